"""A deterministic, compute-stratified subsample of runs, for stores too large to fit whole.

A law has a handful of parameters; past a few tens of thousands of runs more runs narrow nothing a forecast
needs, while the fit's and the bootstrap's cost grows with every run. :func:`stratified_sample` keeps at most
about ``cap`` runs, spread over log compute: the range is cut into equal bins, each bin keeps all its runs up to
one common quota (the sparse bins, usually the largest runs, are kept whole), the dense bins are sampled
uniformly at random with ``seed``. The smallest and the largest run are always kept, so the compute range (and
a backtest's default cutoff) stays the same. Runs of one group (the seeds of a configuration, the checkpoints of
one run) are kept or left out together, as the bootstrap resamples them::

    keep = stratified_sample(data, cap=20_000, seed=0)   # boolean mask over data's runs
    data = data.subset(keep)
"""

from __future__ import annotations

import numpy as np

from gaitforecast.laws.data import LawData

BINS = 40  # equal-width bins over the log-compute range
SAMPLE_HOW = (f"stratified over log compute ({BINS} equal bins, each keeping its runs up to a common quota, so "
              "the sparse bins, the largest runs among them, are kept whole; the smallest and largest run always "
              "kept; the seeds or checkpoints of one configuration kept or left out together)")


def log_scale(data: LawData) -> np.ndarray:
    """Each run's log compute (log FLOPs, else the sum of its log params and samples, else zeros)."""
    if "flops" in data.logx:
        return data.logx["flops"]
    present = [data.logx[a] for a in ("params", "samples") if a in data.logx]
    return np.sum(present, axis=0) if present else np.zeros(data.n)


def _quota(counts: np.ndarray, target: int) -> np.ndarray:
    """Per-bin take summing to ``target``: min(count, q) for the largest common q that fits, the remainder one
    each to the highest bins that still have runs left."""
    if counts.sum() <= target:
        return counts.copy()
    lo, hi = 0, int(counts.max())
    while lo < hi:  # the largest q with sum(min(counts, q)) <= target
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if np.minimum(counts, mid).sum() <= target else (lo, mid - 1)
    take = np.minimum(counts, lo)
    fuller = np.flatnonzero(counts > lo)[::-1]
    take[fuller[:target - int(take.sum())]] += 1
    return take


def stratified_sample(data: LawData, cap: int, seed: int = 0, bins: int = BINS) -> np.ndarray:
    """Boolean mask keeping about ``cap`` of ``data``'s runs (all of them when there are no more; exactly ``cap``
    when every group is one run): whole groups, stratified over log compute, the smallest and largest run
    always in. Deterministic for a seed."""
    if data.n <= cap:
        return np.ones(data.n, dtype=bool)
    _, groups = np.unique(data.groups, return_inverse=True)
    runs_per_group = np.bincount(groups)
    n_groups = len(runs_per_group)
    scale = np.bincount(groups, weights=log_scale(data), minlength=n_groups) / runs_per_group  # per group
    lo, hi = float(scale.min()), float(scale.max())
    stratum = np.minimum(((scale - lo) / ((hi - lo) / bins if hi > lo else 1.0)).astype(int), bins - 1)
    forced = np.zeros(n_groups, dtype=bool)
    forced[[int(np.argmin(scale)), int(np.argmax(scale))]] = True  # the compute range stays the runs' range
    order = np.random.default_rng(seed).permutation(n_groups)  # a random priority per group
    order = order[~forced[order]]
    by_stratum = order[np.argsort(stratum[order], kind="stable")]  # the other groups by stratum, random within
    per_stratum = np.bincount(stratum[by_stratum], minlength=bins)
    first = np.concatenate([[0], np.cumsum(per_stratum)[:-1]])  # where each stratum starts in by_stratum
    rank = np.zeros(n_groups, dtype=np.int64)
    rank[by_stratum] = np.arange(len(by_stratum)) - np.repeat(first, per_stratum)  # place within its stratum
    target = max(0, int(cap * n_groups / data.n) - int(forced.sum()))  # groups, at the runs' mean group size
    kept = forced | (~forced & (rank < _quota(per_stratum, target)[stratum]))
    return kept[groups]

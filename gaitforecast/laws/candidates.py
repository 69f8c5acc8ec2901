"""What could be trained next: candidate runs as plain arrays, a seed design spread over them, and the grid an
imported table's runs sit on. The sweep layer (or the CLI) turns a spec's planned runs into :class:`Candidates`;
:mod:`gaitforecast.laws.design` ranks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError


@dataclass(frozen=True)
class Candidates:
    """Runs that could be trained next: parameters, samples and training FLOPs per run, and a label for each."""

    params: np.ndarray
    samples: np.ndarray
    flops: np.ndarray
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        arrays = [np.atleast_1d(np.asarray(a, dtype=float)) for a in (self.params, self.samples, self.flops)]
        if len({len(a) for a in arrays}) != 1:
            raise GaitforecastError("candidate params, samples and flops must have one value per run each")
        for name, a in zip(("params", "samples", "flops"), arrays):
            if not (np.isfinite(a).all() and (a > 0).all()):
                raise GaitforecastError(f"candidate {name} must be positive finite numbers")
            object.__setattr__(self, name, a)
        labels = tuple(str(x) for x in self.labels) or tuple(f"run {i}" for i in range(len(arrays[0])))
        if len(labels) != len(arrays[0]):
            raise GaitforecastError("candidate labels must have one entry per run")
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.flops)

    def logx(self) -> dict[str, np.ndarray]:
        return {"params": np.log(self.params), "samples": np.log(self.samples), "flops": np.log(self.flops)}

    def subset(self, mask: np.ndarray) -> "Candidates":
        mask = np.asarray(mask)
        return Candidates(self.params[mask], self.samples[mask], self.flops[mask],
                          tuple(np.asarray(self.labels, dtype=object)[mask]))


def spread_runs(params: np.ndarray, samples: np.ndarray, flops: np.ndarray, n: int,
                existing: tuple[np.ndarray, np.ndarray] | None = None, cheap_share: float = 0.5,
                budget: float = np.inf) -> list[int]:
    """Indices of up to ``n`` candidate runs spread over log N x log D: greedy maximin (each next run the farthest
    from every run so far, ``existing`` (params, samples) included), one run per configuration, among the cheaper
    ``cheap_share`` of the configurations when that leaves enough of them, cheapest first on ties; FLOPs summing
    to at most ``budget``. With nothing existing this is a seed design; with runs, the runs that fill its gaps."""
    flops = np.asarray(flops, float)
    ln_n, ln_d = np.log(np.asarray(params, float)), np.log(np.asarray(samples, float))
    old_n, old_d = (np.log(np.asarray(a, float)) for a in existing) if existing is not None else (ln_n[:0], ln_d[:0])
    z_all = []
    for new, old in ((ln_n, old_n), (ln_d, old_d)):
        both = np.concatenate([new, old])
        z_all.append((both - both.min()) / max(float(np.ptp(both)), 1e-12))
    z_all = np.column_stack(z_all)
    z, points = z_all[: len(flops)], list(z_all[len(flops):])
    _, first = np.unique(np.round(z, 9), axis=0, return_index=True)  # one run per configuration
    pool = np.sort(first)
    cheap = pool[flops[pool] <= np.quantile(flops[pool], cheap_share)]
    if len(cheap) >= n:
        pool = cheap
    chosen: list[int] = []
    left = float(budget)
    while len(chosen) < n:
        free = np.array([i for i in pool if i not in chosen and flops[i] <= left], dtype=int)
        if not len(free):
            break
        if points:
            dist = np.min(np.linalg.norm(z[free][:, None, :] - np.array(points)[None], axis=2), axis=1)
            order = np.lexsort((flops[free], -np.round(dist, 9)))
        else:
            order = np.argsort(flops[free], kind="stable")
        pick = int(free[order[0]])
        chosen.append(pick)
        points.append(z[pick])
        left -= flops[pick]
    return chosen


def table_grid(params: np.ndarray, samples: np.ndarray, step_decades: float = 0.125) -> tuple[np.ndarray, np.ndarray]:
    """The N x D grid an imported table's runs sit on, less the cells they occupy: each axis' values binned to
    ``step_decades`` (a bin's value is the median of its runs), every (N, D) pair of those levels with no run."""
    ln_n, ln_d = np.log10(np.asarray(params, float)), np.log10(np.asarray(samples, float))
    bin_n, bin_d = np.round(ln_n / step_decades).astype(int), np.round(ln_d / step_decades).astype(int)
    levels_n = pd.Series(ln_n).groupby(bin_n).median()
    levels_d = pd.Series(ln_d).groupby(bin_d).median()
    used = set(zip(bin_n, bin_d))
    cells = [(bn, bd) for bn in levels_n.index for bd in levels_d.index if (bn, bd) not in used]
    return (np.array([10 ** levels_n[bn] for bn, _ in cells], dtype=float),
            np.array([10 ** levels_d[bd] for _, bd in cells], dtype=float))

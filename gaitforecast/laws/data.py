"""From a runs table (``RunStore.runs()`` or any DataFrame shaped like it) to the arrays a law is fitted on.

The table needs ``params``, ``samples`` and/or ``flops`` plus one column per metric. Accuracy-like metrics
(rank1*, rank5*, mAP, mINP, acc*) are fitted as -ln accuracy (the sigmoid form: error = 1 - accuracy), see
ACCURACY_TARGETS; everything else (loss, ...) as is.
Runs of one configuration that differ only by seed form one *group*: the bootstrap resamples groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.metrics import MAIN_METRIC, check_kind, kind_from_name

# The run record's fields (gaitforecast.record.RUN_FIELDS, which the laws do not import; a test keeps them equal).
NON_METRIC_COLUMNS = frozenset(
    "id arch width seed params params_nonembed unique_sequences samples flops wall_time_s throughput dtype "
    "threads versions git_sha status source config created_at updated_at flops_estimated error host device "
    "compiled".split()
)
DEFAULT_METRIC = MAIN_METRIC
ERROR_FLOOR = 1e-4  # a perfect-accuracy run is fitted as this error (log of 0 is undefined)
ACCURACY_FLOOR = 1e-4  # a zero-accuracy run is fitted as -ln(1e-4) (ln of 0 is undefined)
# What an accuracy is fitted as.  "neglog": -ln(accuracy), the log-loss of a correct answer: it falls to 0 at
# perfect accuracy, equals the error rate to first order near saturation, and decays as a power law far from it,
# where 1 - accuracy barely moves (rollout backtests on the default sweep: median error 0.5-2.3 points against
# 1.9-4.0 fitted as error).  "error": 1 - accuracy, for forms that model the error rate itself (the sigmoid).
ACCURACY_TARGETS = ("neglog", "error")


def is_accuracy_metric(metric: str) -> bool:
    """True when the name makes the metric an accuracy (higher is better, in [0, 1]); see metrics.kind_from_name."""
    return kind_from_name(metric) == "accuracy"


def metric_kind(runs: pd.DataFrame, metric: str, kind: str | None = None) -> str:
    """The kind of ``metric``: ``kind`` if given, else the one stored with the runs (``runs.attrs["metric_kinds"]``,
    set by ``RunStore.runs`` from ``import-runs --kind``), else the one its name makes certain; otherwise a
    GaitforecastError asking for --kind (an accuracy is never fitted as a loss by guess)."""
    if kind is not None:
        return check_kind(kind)
    stored = (getattr(runs, "attrs", {}) or {}).get("metric_kinds", {}).get(metric)
    if stored is not None:
        return check_kind(stored)
    inferred = kind_from_name(metric)
    if inferred is None:
        raise GaitforecastError(
            f"cannot tell from its name whether {metric!r} is a loss (lower is better), an accuracy or an error "
            "rate (fractions, higher or lower is better); pass --kind loss|accuracy|error (import-runs --kind "
            "stores it with the runs)"
        )
    return inferred


def frontier_mask(flops: np.ndarray, values: np.ndarray, higher: bool = False,
                  tiebreak: np.ndarray | None = None) -> np.ndarray:
    """True for the runs that beat every cheaper run: walking by increasing FLOPs (at equal FLOPs the better
    value first, then ``tiebreak``), each run that sets a new best (max when ``higher``, else min)."""
    flops, values = np.asarray(flops, float), np.asarray(values, float)
    keys = [np.asarray(tiebreak)] if tiebreak is not None else []
    order = np.lexsort(keys + [-values if higher else values, flops])
    mask = np.zeros(len(flops), bool)
    best = -np.inf if higher else np.inf
    for i in order:
        if (values[i] > best) if higher else (values[i] < best):
            best, mask[i] = values[i], True
    return mask


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """Numeric columns of a runs table that are metrics (not run bookkeeping)."""
    return [
        c for c in runs.columns
        if c not in NON_METRIC_COLUMNS and pd.api.types.is_numeric_dtype(runs[c]) and runs[c].notna().any()
    ]


def choose_metric(runs: pd.DataFrame, metric: str | None) -> str:
    """The metric to fit: the one asked for, else the main metric (gaitforecast.metrics), else the table's only metric."""
    known = metric_columns(runs)
    if metric is not None:
        listed = ", ".join(known) if known else "(none)"
        if metric in NON_METRIC_COLUMNS:
            raise GaitforecastError(f"{metric!r} is a field of every run, not a metric; the metrics are: {listed}")
        if metric not in runs.columns:
            raise GaitforecastError(f"unknown metric {metric!r}; the runs have: {listed}. Pass one with --metric")
        return metric
    if DEFAULT_METRIC in known:
        return DEFAULT_METRIC
    if len(known) == 1:
        return known[0]
    if not known:
        raise GaitforecastError("the runs have no metric columns; record metrics or import a table with one")
    raise GaitforecastError(f"several metrics and no default; pass --metric, one of: {', '.join(known)}")


@dataclass(frozen=True)
class LawData:
    """Arrays one law is fitted on; ``y`` is the fitted target: the loss itself, or for an accuracy metric its
    negative log (``target`` "neglog") or its error rate (``target`` "error"), see ACCURACY_TARGETS."""

    metric: str
    y: np.ndarray
    logx: dict[str, np.ndarray]
    groups: np.ndarray  # integer group per run; seeds of one configuration share a group
    ids: np.ndarray
    arch: np.ndarray
    target: str = "loss"  # "loss" (fitted as it is), or for accuracies one of ACCURACY_TARGETS
    kind: str = "loss"  # what the metric is: loss, accuracy or error (metrics.KINDS)
    dropped_missing: int = 0
    clipped: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> bool:
        """True for an accuracy metric (higher is better, fitted through a decreasing transform)."""
        return self.target != "loss"

    @property
    def fitted_as(self) -> str:
        """The fitted target in words."""
        if self.target == "neglog":
            return f"-ln {self.metric}"
        if self.target == "error":
            return f"error = 1 - {self.metric}"
        return self.metric

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def logy(self) -> np.ndarray:
        return np.log(self.y)

    def to_metric_units(self, fitted: np.ndarray) -> np.ndarray:
        """Fitted-target values back in the metric's own units (accuracy = exp(-y) or 1 - error)."""
        return from_target(fitted, self.target)

    def retarget(self, target: str) -> "LawData":
        """The same runs with an accuracy fitted as ``target`` (a loss keeps its target)."""
        if not self.accuracy or target == self.target:
            return self
        y, clipped = to_target(self.to_metric_units(self.y), target)
        return replace(self, y=y, target=target, clipped=clipped)

    def drop_worst(self, count: int) -> "LawData":
        """Leave out the ``count`` runs with the worst metric (highest loss or error), as Epoch AI drops the 5
        highest-loss Chinchilla runs; for outliers you can name, not for tidying a fit."""
        if count < 0 or count >= self.n:
            raise GaitforecastError(f"can drop between 0 and {self.n - 1} runs, not {count}")
        if count == 0:
            return self
        keep = np.ones(self.n, dtype=bool)
        keep[np.argsort(self.y)[-count:]] = False
        return self.subset(keep)

    def subset(self, mask: np.ndarray) -> "LawData":
        """The same data restricted to the runs where ``mask`` is true (groups renumbered)."""
        mask = np.asarray(mask, dtype=bool)
        _, groups = np.unique(self.groups[mask], return_inverse=True)
        return LawData(
            metric=self.metric, y=self.y[mask], logx={k: v[mask] for k, v in self.logx.items()},
            groups=groups, ids=self.ids[mask], arch=self.arch[mask], target=self.target, kind=self.kind,
        )


def _checkpoint_runs(runs: pd.DataFrame) -> pd.Series | None:
    """The training run each row is a checkpoint of (config "run", from ``import-runs --run-column``), or None
    when no row says; rows of one run are one resampling group."""
    if "config" not in runs.columns:
        return None
    import json

    def run_of(text) -> str | None:
        if isinstance(text, dict):
            return text.get("run")
        try:
            return json.loads(text).get("run") if isinstance(text, str) else None
        except (ValueError, AttributeError):
            return None

    texts = runs["config"]
    marked = texts.map(lambda t: isinstance(t, dict) or (isinstance(t, str) and '"run"' in t))
    if not marked.any():  # the usual case: no JSON is parsed at all
        return None
    found = texts.where(marked).map(run_of, na_action="ignore")
    return found if found.notna().any() else None


def to_target(values: np.ndarray, target: str) -> tuple[np.ndarray, int]:
    """Accuracies (fractions) as the fitted target, and how many were clipped away from 0 or 1."""
    values = np.asarray(values, dtype=float)
    if target == "loss":
        return values, 0
    if target == "neglog":
        y = -np.log(np.maximum(values, ACCURACY_FLOOR))
        clipped = int(((values < ACCURACY_FLOOR) | (y < ERROR_FLOOR)).sum())
    elif target == "error":
        y = 1.0 - values
        clipped = int((y < ERROR_FLOOR).sum())
    else:
        raise GaitforecastError(f"unknown fitted target {target!r}; one of loss, {', '.join(ACCURACY_TARGETS)}")
    return np.maximum(y, ERROR_FLOOR), clipped


def from_target(fitted: np.ndarray, target: str) -> np.ndarray:
    """Inverse of :func:`to_target`: fitted-target values in the metric's own units."""
    fitted = np.asarray(fitted)
    if target == "neglog":
        return np.exp(-fitted)
    if target == "error":
        return 1.0 - fitted
    return fitted


def _axis_values(runs: pd.DataFrame, axis: str) -> np.ndarray:
    """params / samples / flops as floats; flops fall back to 6 * params * samples when absent."""
    if axis in runs.columns and runs[axis].notna().any():
        return pd.to_numeric(runs[axis], errors="coerce").to_numpy(dtype=float)
    cols = set(runs.columns)
    if axis == "flops" and {"params", "samples"} <= cols:
        return 6.0 * runs["params"].to_numpy(dtype=float) * runs["samples"].to_numpy(dtype=float)
    if axis == "samples" and {"params", "flops"} <= cols:  # Chinchilla convention C = 6 N D
        return runs["flops"].to_numpy(dtype=float) / (6.0 * runs["params"].to_numpy(dtype=float))
    if axis in cols:  # present but empty everywhere: the caller refuses it naming the runs
        return pd.to_numeric(runs[axis], errors="coerce").to_numpy(dtype=float)
    raise GaitforecastError(f"the runs have no {axis!r} column; import it (e.g. --column {axis}=...) or pick another law")


def prepare(runs: pd.DataFrame, metric: str | None, inputs: tuple[str, ...] = ("params", "samples", "flops"),
            accuracy_target: str = "neglog", kind: str | None = None) -> LawData:
    """Validate a runs table and turn it into :class:`LawData` for the given metric and input axes. The metric's
    kind is ``kind`` or :func:`metric_kind`'s answer; an accuracy is fitted as ``accuracy_target`` (see
    ACCURACY_TARGETS), a loss or an error rate as it is.

    Runs without a value for the metric are left out (counted in ``dropped_missing``); infinite or
    out-of-range metric values and missing, infinite or non-positive inputs are refused with the run ids.
    """
    if runs is None or len(runs) == 0:
        raise GaitforecastError("no finished runs to fit; run `gaitforecast run-small` or `gaitforecast import-runs` first")
    metric = choose_metric(runs, metric)
    kind = metric_kind(runs, metric, kind)
    values = pd.to_numeric(runs[metric], errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(values)
    if not keep.any():
        raise GaitforecastError(f"no run has a value for {metric!r}; pick another metric")
    runs, values = runs.loc[keep], values[keep]
    ids = runs["id"].astype(str).to_numpy() if "id" in runs.columns else np.array([str(i) for i in runs.index])

    def refuse(bad: np.ndarray, what: str) -> None:
        shown = ", ".join(ids[bad][:5]) + (" ..." if bad.sum() > 5 else "")
        raise GaitforecastError(f"{bad.sum()} run(s) have {what} (runs {shown}); fix or delete them before fitting")

    if not np.isfinite(values).all():
        refuse(~np.isfinite(values), f"an infinite {metric}")
    accuracy = kind == "accuracy"
    clipped = 0
    if kind == "error" and ((values < 0) | (values > 1)).any():
        refuse((values < 0) | (values > 1), f"{metric} outside [0, 1] (error rates are fractions)")
    if accuracy:
        if ((values < 0) | (values > 1)).any():
            refuse((values < 0) | (values > 1), f"{metric} outside [0, 1] (accuracies are fractions)")
        y, clipped = to_target(values, accuracy_target)
    elif kind == "error":  # fitted as it is; an error of exactly 0 is fitted as 1e-4 (log of 0 is undefined)
        clipped = int((values < ERROR_FLOOR).sum())
        y = np.maximum(values, ERROR_FLOOR)
    else:
        if (values <= 0).any():
            refuse(values <= 0, f"a non-positive {metric} (laws fit positive, lower-is-better values)")
        y = values
    logx = {}
    for axis in ("params", "samples", "flops"):
        if axis not in inputs and not (axis in runs.columns and runs[axis].notna().all()):
            continue
        x = _axis_values(runs, axis)
        bad = ~np.isfinite(x) | ~(x > 0)
        if bad.any() and axis in inputs:
            refuse(bad, f"missing, infinite or non-positive {axis}")
        wrong = ~np.isnan(x) & bad  # given but infinite or non-positive: refused even where the law does not
        if wrong.any():             # need the axis, so a bad column cannot quietly change the law chosen
            refuse(wrong, f"an infinite or non-positive {axis}")
        if bad.any():
            continue
        logx[axis] = np.log(x)
    missing = [a for a in inputs if a not in logx]
    if missing:
        raise GaitforecastError(f"the runs lack {', '.join(missing)}; pick a law that does not need them")
    group_cols = [c for c in ("arch", "params", "samples") if c in runs.columns]
    # map(str), not astype(str): pandas 3 keeps NaN through astype(str) and the join would fail on it. Column by
    # column, not row by row: a million runs take 1.5 s instead of 43 s.
    keys = pd.Series(ids, index=runs.index)
    if group_cols:
        keys = runs[group_cols[0]].map(str)
        for col in group_cols[1:]:
            keys = keys + "|" + runs[col].map(str)
    checkpoint_runs = _checkpoint_runs(runs)  # rows that are checkpoints of one run travel together
    if checkpoint_runs is not None:
        keys = pd.Series(np.where(checkpoint_runs.notna(), "run|" + checkpoint_runs.astype(str), keys),
                         index=runs.index)
    _, groups = np.unique(keys.to_numpy(), return_inverse=True)
    arch = runs["arch"].fillna("").astype(str).to_numpy() if "arch" in runs.columns else np.full(len(y), "")
    extra = {}
    if checkpoint_runs is not None:
        sizes = checkpoint_runs.dropna().value_counts()
        extra["checkpoint_runs"] = int((sizes > 1).sum())
        extra["checkpoint_rows"] = int(sizes[sizes > 1].sum())
    return LawData(
        metric=metric, y=np.asarray(y, dtype=float), logx=logx, groups=groups, ids=ids, arch=arch, extra=extra,
        target=accuracy_target if accuracy else "loss", kind=kind, dropped_missing=int((~keep).sum()), clipped=clipped,
    )

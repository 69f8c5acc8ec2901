"""The frames the dashboard's charts draw, without Streamlit.

The pages (through :mod:`gaitforecast.dashboard.fits`, which re-exports these) and the figure files of
`gaitforecast plot` and `gaitforecast report` (:mod:`gaitforecast.reporting`) prepare chart data with the same
functions, so a figure put in a paper is the chart on the page. Nothing here fits a law: it reshapes what the
forecast use case returns (a bootstrap, a frontier table, a backtest, a comparison) into columns the builders of
:mod:`gaitforecast.dashboard.charts` take.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import FORM_NAMES, BootstrapResult, IsoFlopResult, get_form, metric_kind
from gaitforecast.laws.data import frontier_mask, to_target

FRONTIER_POINTS = 16  # budgets along a drawn compute-optimal frontier


def store_signature(path: Path) -> tuple | None:
    """Cheap content signature of the store file (size and mtime of the database and its WAL); None if missing."""
    parts: list = []
    for p in (path, Path(str(path) + ".wal")):
        try:
            st_ = p.stat()
        except FileNotFoundError:
            if p == path:
                return None
            parts.append(None)
            continue
        parts.append((st_.st_size, st_.st_mtime_ns))
    return tuple(parts)


# ---------------------------------------------------------------- what is on the y axis
def kind_of(runs: pd.DataFrame, metric: str) -> str:
    """The metric's kind (stored with the runs or certain from its name); "loss" when neither says, so the
    pages can draw, while every fit on such a metric reports the question itself."""
    try:
        return metric_kind(runs, metric)
    except GaitforecastError:
        return "loss"


def fitted_target(metric: str, law: str, runs: pd.DataFrame) -> str:
    """What ``law`` fits ``metric`` of these runs as: "loss" (as it is), or for an accuracy the form's target
    ("neglog" or "error")."""
    if kind_of(runs, metric) != "accuracy":
        return "loss"
    return get_form(law).accuracy_target if law in FORM_NAMES else "neglog"


def target_title(metric: str, target: str) -> str:
    """Axis title of the fitted target for ``metric`` (``target`` as in :func:`fitted_target`)."""
    if target == "neglog":
        return f"−ln {metric}"
    return f"error = 1 − {metric}" if target == "error" else metric


# ---------------------------------------------------------------- runs and law curves
def fit_points(boot: BootstrapResult, runs: pd.DataFrame) -> pd.DataFrame:
    """The fitted runs in the fitted target's units: id, arch, params, samples, flops, y, pred, resid (log)."""
    law, data = boot.law, boot.law.data
    logx = {k: data.logx[k] for k in law.form.inputs}
    pred = np.exp(law.form.log_predict(law.theta, logx)[0])
    out = pd.DataFrame({"id": data.ids, "arch": data.arch, "y": data.y, "pred": pred})
    out["resid"] = np.log(out["y"]) - np.log(out["pred"])
    out["metric"] = data.to_metric_units(data.y)
    extra = runs.set_index(runs["id"].astype(str))
    for col in ("params", "samples", "flops", "width"):
        if col in extra.columns:
            out[col] = extra[col].reindex(out["id"]).to_numpy()
    return out


def band_frame(frame: pd.DataFrame, x: str, x_name: str, target: str, pred: str = "predicted",
               lo: str = "ci_lo", hi: str = "ci_hi") -> pd.DataFrame:
    """A prediction table (metric units) as x_name, pred, lo, hi in the fitted target's units (``target`` as in
    :func:`fitted_target`; for accuracies the transform decreases, so the bounds swap)."""
    p = pd.to_numeric(frame[pred], errors="coerce").to_numpy(float)
    a = pd.to_numeric(frame[lo], errors="coerce").to_numpy(float)
    b = pd.to_numeric(frame[hi], errors="coerce").to_numpy(float)
    if target != "loss":
        with np.errstate(divide="ignore", invalid="ignore"):
            p, a, b = (to_target(v, target)[0] for v in (p, b, a))
    return pd.DataFrame({x_name: pd.to_numeric(frame[x], errors="coerce").to_numpy(float), "pred": p,
                         "lo": np.minimum(a, b), "hi": np.maximum(a, b)})


def split_interval(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of a column of [lo, hi] lists (NaN where missing)."""
    lo = [v[0] if isinstance(v, (list, tuple)) and len(v) == 2 else np.nan for v in frame[col]]
    hi = [v[1] if isinstance(v, (list, tuple)) and len(v) == 2 else np.nan for v in frame[col]]
    return np.asarray(lo, float), np.asarray(hi, float)


def frontier_curve(table: pd.DataFrame, target: str) -> pd.DataFrame:
    """The laws frontier table as flops, pred, lo, hi (target units) plus params_opt and samples_opt."""
    t = table.copy()
    t["ci_lo"], t["ci_hi"] = split_interval(t, "predicted_ci")
    out = band_frame(t, "budget_flops", "flops", target)
    for col in ("params_opt", "samples_opt"):
        if col in t.columns:
            out[col] = pd.to_numeric(t[col], errors="coerce").to_numpy(float)
    return out


def empirical_frontier(points: pd.DataFrame) -> pd.Series:
    """True for runs that no cheaper run beats (lower fitted target at less or equal compute)."""
    return pd.Series(frontier_mask(points["flops"].to_numpy(), points["y"].to_numpy()), index=points.index)


def default_budget(runs: pd.DataFrame) -> float:
    """A budget to forecast at when none is given: the power of ten at or above 10x the largest run's FLOPs
    (1e18 when the runs have none)."""
    largest = float(pd.to_numeric(runs["flops"], errors="coerce").max()) if "flops" in runs else float("nan")
    return float(10 ** np.ceil(np.log10(largest * 10))) if np.isfinite(largest) and largest > 0 else 1e18


def held_options(values: pd.Series) -> list[float]:
    """Values the other axis of a two-axis law can be held at (7 log-spaced over the runs, 3 digits); the
    middle one is the default."""
    values = values.astype(float)
    return sorted({float(f"{v:.3g}") for v in np.geomspace(values.min(), values.max(), 7)})


def series(curve: pd.DataFrame, name: str, column: str = "arch") -> pd.DataFrame:
    """A law curve (flops, pred, lo, hi) as one series of :func:`charts.banded_lines` (flops, value, lo, hi)."""
    return pd.DataFrame({"flops": curve["flops"], "value": curve["pred"], "lo": curve["lo"], "hi": curve["hi"],
                         column: name})


def series_points(points: pd.DataFrame, name: str, column: str = "arch") -> pd.DataFrame:
    """Fitted runs (:func:`fit_points`) as the observed dots of one :func:`charts.banded_lines` series."""
    return pd.DataFrame({"id": points["id"], "flops": points["flops"], "value": points["y"], column: name,
                         "params": points.get("params"), "samples": points.get("samples")})


# ---------------------------------------------------------------- compute-optimal allocation
N_OPT, D_OPT = "N_opt (parameters)", "D_opt (samples)"


def iso_minima(iso: IsoFlopResult, target: str) -> pd.DataFrame:
    """The IsoFLOP groups with an interior minimum: their table plus budget, params (N at the minimum) and y
    (the metric there, in target units)."""
    minima = iso.budgets[iso.budgets["vertex_inside"]].rename(columns={"flops": "budget"})
    return minima.assign(params=minima["params_opt"].astype(float),
                         y=band_frame(minima, "budget", "budget", target, "metric_opt", "metric_opt",
                                      "metric_opt")["pred"].to_numpy())


def allocation_lines(table: pd.DataFrame) -> pd.DataFrame:
    """A laws frontier table as N_opt and D_opt series against the budget (budget, value, lo, hi, series)."""
    rows = []
    for name, col, ci_col in ((N_OPT, "params_opt", "params_opt_ci"), (D_OPT, "samples_opt", "samples_opt_ci")):
        lo, hi = split_interval(table, ci_col)
        rows.append(pd.DataFrame({"budget": table["budget_flops"].astype(float), "value": table[col].astype(float),
                                  "lo": lo, "hi": hi, "series": name}))
    return pd.concat(rows, ignore_index=True)


def observed_optima(minima: pd.DataFrame) -> pd.DataFrame:
    """IsoFLOP minima (:func:`iso_minima`) as the observed N_opt dots of :func:`allocation_lines`."""
    return minima.assign(value=minima["params"], series=N_OPT)[["budget", "value", "series"]]


# ---------------------------------------------------------------- backtest
def backtest_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """A laws Backtest's rows as :func:`charts.predicted_vs_actual` reads them (lo, hi, inside)."""
    return rows.rename(columns={"pi_lo": "lo", "pi_hi": "hi", "inside_pi": "inside"})


def exponent_rows(exponents: dict[str, dict[str, list]]) -> pd.DataFrame:
    """A comparison's exponents (``{arch: {name: [value, lo, hi]}}``, as `compare --json` prints them) as one row
    per architecture and exponent: arch, exponent, value, lo, hi (NaN for an exponent held fixed)."""
    rows = [{"arch": arch, "exponent": name, "value": value, "lo": lo, "hi": hi}
            for arch, named in exponents.items() for name, (value, lo, hi) in named.items()]
    return pd.DataFrame(rows, columns=["arch", "exponent", "value", "lo", "hi"]).astype(
        {"value": float, "lo": float, "hi": float})

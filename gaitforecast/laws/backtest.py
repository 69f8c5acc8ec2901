"""Does the law extrapolate? Rollout backtests, form selection by held-out error, the default form.

A backtest fits on the runs below a compute cutoff and predicts every larger run (the OLMo-core "rollout"
protocol, fitting.md §3.11): per-run predictions with 95 % prediction intervals, median and mean relative error,
signed bias and the share of actuals inside their interval. :func:`rank_forms` runs it for every candidate form
and picks the one that extrapolates best; in-sample fit never picks the form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.threads import single_blas_thread
from gaitforecast.laws.bootstrap import bootstrap
from gaitforecast.laws.data import LawData, prepare
from gaitforecast.laws.fit import fit_data
from gaitforecast.laws.forms import FORMS, get_form

CUTOFF_SHARE = 0.65  # default: fit on the lower 65 % of the log-compute range, test on the rest


@dataclass(frozen=True)
class Backtest:
    """Result of one rollout backtest; errors are relative, in the metric's own units ((pred - actual) / actual),
    except ``median_abs_error``: the median of |pred - actual| in the metric's units (accuracy, not error)."""

    law: str
    metric: str
    fit_below: float
    n_fit: int
    n_test: int
    median_rel_error: float
    median_abs_error: float
    mean_rel_error: float
    bias: float
    coverage: float
    converged: bool
    rows: pd.DataFrame = field(repr=False)

    @property
    def median_interval_width(self) -> float:
        """Median width of the held-out runs' 95 % prediction intervals, in the metric's units."""
        return float(np.median(self.rows["pi_hi"] - self.rows["pi_lo"]))

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "rows"}
        out["median_interval_width"] = self.median_interval_width
        out["rows"] = self.rows.to_dict(orient="records")
        return out


def default_cutoff(log_flops: np.ndarray, share: float = CUTOFF_SHARE) -> float:
    """FLOPs at ``share`` of the way up the runs' log-compute range."""
    lo, hi = float(log_flops.min()), float(log_flops.max())
    return float(np.exp(lo + share * (hi - lo)))


def _log_flops(data: LawData) -> np.ndarray:
    if "flops" not in data.logx:
        raise GaitforecastError("a backtest needs each run's training FLOPs; import a flops column")
    return data.logx["flops"]


@single_blas_thread
def backtest(runs: pd.DataFrame | LawData, metric: str | None = None, law: str = "chinchilla",
             fit_below: float | None = None, n_resamples: int = 500, seed: int = 0,
             huber_delta: float = 1e-3, calibrate: bool = True) -> Backtest:
    """Fit ``law`` on runs with FLOPs <= ``fit_below`` (default: 65 % up the log-compute range), predict the rest.
    ``calibrate=False`` leaves out the extrapolation calibration (laws.extrapolation), to see what it adds."""
    data = runs if isinstance(runs, LawData) else prepare(runs, metric, ("flops",) + get_form(law).inputs)
    ln_c = _log_flops(data)
    cutoff = default_cutoff(ln_c) if fit_below is None else float(fit_below)
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise GaitforecastError(f"--fit-below must be a positive number of FLOPs, got {fit_below}")
    below = ln_c <= np.log(cutoff) * (1 + 1e-12)
    if below.all() or not below.any():
        raise GaitforecastError(
            f"a cutoff of {cutoff:.3g} FLOPs leaves {'no' if below.all() else 'every'} run to "
            f"{'test' if below.all() else 'fit'}; the runs span {np.exp(ln_c.min()):.3g} to {np.exp(ln_c.max()):.3g}, "
            "pass --fit-below inside that range"
        )
    form = get_form(law)
    fitted = fit_data(form, data.subset(below), huber_delta, calibrate=calibrate)
    boot = bootstrap(fitted, n_resamples=n_resamples, seed=seed)
    test = data.subset(~below)
    given = {k: np.exp(test.logx[k]) for k in form.inputs}
    bands = boot.predict(**given)
    actual, predicted = test.to_metric_units(test.y), bands["predicted"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):  # a held-out metric of exactly 0 has no relative error
        rel = np.where(actual != 0, (predicted - actual) / np.abs(actual), np.nan)
    scored = np.isfinite(rel)
    if not scored.any():
        raise GaitforecastError(f"every held-out run has {data.metric} = 0, so relative errors are undefined; "
                                "move --fit-below so that runs with a non-zero metric are held out")
    inside = (actual >= bands["pi_lo"].to_numpy()) & (actual <= bands["pi_hi"].to_numpy())
    rows = pd.DataFrame({
        "id": test.ids, "params": np.exp(test.logx["params"]) if "params" in test.logx else np.nan,
        "samples": np.exp(test.logx["samples"]) if "samples" in test.logx else np.nan,
        "flops": np.exp(test.logx["flops"]), "actual": actual, "predicted": predicted,
        "pi_lo": bands["pi_lo"].to_numpy(), "pi_hi": bands["pi_hi"].to_numpy(), "rel_error": rel,
        "inside_pi": inside,
    }).sort_values("flops", ignore_index=True)
    return Backtest(
        law=law, metric=data.metric, fit_below=cutoff, n_fit=int(below.sum()), n_test=int((~below).sum()),
        median_rel_error=float(np.median(np.abs(rel[scored]))),
        median_abs_error=float(np.median(np.abs(predicted - actual)[scored])),
        mean_rel_error=float(np.mean(np.abs(rel[scored]))),
        bias=float(np.mean(rel[scored])), coverage=float(np.mean(inside)), converged=fitted.converged, rows=rows,
    )


def candidate_laws(data: LawData) -> list[str]:
    """Forms that can be fitted to these data: their inputs are present; the sigmoid only for accuracies and
    error rates (it is bounded by the chance error)."""
    return [
        name for name, form in FORMS.items()
        if all(a in data.logx for a in form.inputs) and form.fits(data.kind)
    ]


@single_blas_thread
def rank_forms(runs: pd.DataFrame | LawData, metric: str | None = None, laws: list[str] | None = None,
               fit_below: float | None = None, n_resamples: int = 300, seed: int = 0) -> pd.DataFrame:
    """Backtest every candidate form; a table sorted best first (median relative error, then coverage).

    Forms that cannot be fitted (too few runs below the cutoff, ...) are listed last with the reason.
    """
    data = runs if isinstance(runs, LawData) else prepare(runs, metric, ("flops",))
    rows = []
    names = laws or candidate_laws(data)
    for law in progress.over(names, f"ranking {len(names)} laws by their rollout", unit="laws"):
        try:
            bt = backtest(data, law=law, fit_below=fit_below, n_resamples=n_resamples, seed=seed)
            rows.append({"law": law, "median_rel_error": bt.median_rel_error, "mean_rel_error": bt.mean_rel_error,
                         "bias": bt.bias, "coverage": bt.coverage, "converged": bt.converged, "error": None})
        except GaitforecastError as exc:
            rows.append({"law": law, "median_rel_error": np.inf, "mean_rel_error": np.inf, "bias": np.nan,
                         "coverage": np.nan, "converged": False, "error": str(exc)})
    table = pd.DataFrame(rows)
    table["coverage_gap"] = (table["coverage"] - 0.95).abs().fillna(1.0)
    return table.sort_values(["median_rel_error", "coverage_gap"], ignore_index=True).drop(columns="coverage_gap")


def select_law(runs: pd.DataFrame | LawData, metric: str | None = None, laws: list[str] | None = None,
               fit_below: float | None = None) -> str:
    """The form with the lowest held-out error (see :func:`rank_forms`); refuses if none could be backtested."""
    table = rank_forms(runs, metric, laws, fit_below, n_resamples=100)
    ok = table[table["error"].isna()]
    if ok.empty:
        raise GaitforecastError("no law could be backtested on these runs: " + "; ".join(table["error"].astype(str)))
    return str(ok.iloc[0]["law"])


def _choosable(data: LawData, budget: bool, leave_out: str | None = None) -> list[str]:
    """Candidate forms for an automatic choice: those that answer a compute budget when ``budget``."""
    return [name for name in candidate_laws(data) if name != leave_out and (not budget or FORMS[name].answers_budget)]


def fallback_law(data: LawData, instead_of: str, budget: bool = False) -> str:
    """The best-backtested form other than ``instead_of`` (for when that one is not identified by the runs)."""
    return select_law(data, laws=_choosable(data, budget, leave_out=instead_of))


def resolve_law(data: LawData, law: str | None = "default", budget: bool = False,
                fit_below: float | None = None) -> str:
    """Turn 'default' / 'auto' into a form name.

    'default' is chinchilla when runs vary in both parameters and samples (enough of them), else power-compute.
    'auto' backtests every candidate and takes the best extrapolator. ``budget`` limits the choice to laws
    that answer a compute budget.
    """
    if law not in (None, "default", "auto"):
        get_form(law)
        return law
    if law == "auto":
        return select_law(data, laws=_choosable(data, budget), fit_below=fit_below)
    return "chinchilla" if shortfall(data, "chinchilla") is None else "power-compute"


def shortfall(data: LawData, law: str) -> str | None:
    """Why these runs cannot carry ``law`` (an input missing or not varying, too few distinct runs), or None when
    they can."""
    form = get_form(law)
    missing = [axis for axis in form.inputs if axis not in data.logx]
    if missing:
        return f"no {' or '.join(missing)}"
    flat = [axis for axis in form.inputs if np.ptp(data.logx[axis]) == 0]
    if flat:
        return f"{' and '.join(flat)} do not vary"
    distinct = len(np.unique(data.groups))
    if distinct < form.min_runs:
        return f"{distinct} distinct runs, {form.min_runs} needed"
    return None

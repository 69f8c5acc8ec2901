"""Does the law extrapolate? Rollout backtests, form selection by held-out error, architecture comparison.

A backtest fits on the runs below a compute cutoff and predicts every larger run (the OLMo-core "rollout"
protocol, fitting.md §3.11): per-run predictions with 95 % prediction intervals, median and mean relative error,
signed bias and the share of actuals inside their interval. :func:`rank_forms` runs it for every candidate form
and picks the one that extrapolates best; in-sample fit never picks the form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.threads import single_blas_thread
from gaitforecast.laws.allocate import CostModel, cost_model_for, optimal_draws
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


@dataclass(frozen=True)
class Comparison:
    """Metric of each architecture at matched compute (compute-optimal where the law allocates), B minus A."""

    metric: str
    law: str
    arch_a: str
    arch_b: str
    higher_is_better: bool
    rows: pd.DataFrame
    dominates: str | None  # the arch better at every budget with 95 % confidence, if any
    subsampled: dict | None = None  # arch -> the subsample it was fitted on (see stratified_sample), if any
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "rows"}
        out["rows"] = self.rows.to_dict(orient="records")
        return out


def compared_archs(runs: pd.DataFrame) -> list[str]:
    """The two architectures :func:`compare` compares: the two with the most runs (none without an arch column)."""
    return list(runs["arch"].value_counts().index[:2].astype(str)) if "arch" in runs.columns else []


@single_blas_thread
def compare(runs: pd.DataFrame, metric: str | None = None, law: str = "chinchilla", budgets=None,
            n_resamples: int = 500, seed: int = 0, level: float = 0.95,
            cost_for: Callable[[pd.DataFrame, str], CostModel] = cost_model_for,
            archs: list[str] | None = None) -> Comparison:
    """Fit each of the two architectures (``archs``, default :func:`compared_archs`), compare the metric at matched
    compute. ``cost_for(runs, arch)`` prices a configuration (default: the runs' FLOPs / (N x D) ratio).

    The difference (B - A, in the metric's units) comes with a percentile interval from independent bootstraps.
    Budgets default to 8 points across the compute range both architectures cover.
    """
    if "arch" not in runs.columns or runs["arch"].dropna().nunique() < 2:
        raise GaitforecastError("compare needs runs of at least two architectures (an 'arch' column)")
    form = get_form(law)
    archs = compared_archs(runs) if archs is None else list(archs)
    results = {}
    for arch in progress.over(archs, "fitting each architecture", unit="architectures"):
        part = runs[runs["arch"].astype(str) == arch]
        data = prepare(part, metric, ("flops",) + form.inputs)
        boot = bootstrap(fit_data(form, data), n_resamples=n_resamples, seed=seed)
        cost = cost_for(part, arch) if "params" in form.inputs else CostModel.per_param_sample(6.0)
        results[arch] = (boot, cost, data.logx["flops"])
    lo = max(r[2].min() for r in results.values())
    hi = min(r[2].max() for r in results.values())
    if budgets is None:
        if hi <= lo:
            raise GaitforecastError("the architectures' runs cover disjoint compute ranges; pass budgets to compare at")
        budgets = np.exp(np.linspace(lo, hi, 8))
    accuracy = results[archs[0]][0].law.data.accuracy
    rows, tail = [], 50.0 * (1 - level)
    for budget in np.atleast_1d(budgets).astype(float):
        draws = {}
        for arch, (boot, cost, _) in results.items():
            thetas = np.vstack([boot.law.theta[None, :], boot.thetas])
            y = boot.law.data.to_metric_units(optimal_draws(boot.law, thetas, budget, cost)[2])
            draws[arch] = y
        a, b = draws[archs[0]], draws[archs[1]]
        m = min(len(a), len(b)) - 1
        diff = b[1:m + 1] - a[1:m + 1]
        d_lo, d_hi = np.percentile(diff, [tail, 100 - tail])
        sign = 1.0 if accuracy else -1.0  # positive "advantage of B" means B is better
        better = None
        if d_lo * d_hi > 0:  # the interval excludes zero
            better = archs[1] if sign * d_lo > 0 else archs[0]
        rows.append({"budget_flops": budget, archs[0]: a[0], archs[1]: b[0], "diff": b[0] - a[0],
                     "diff_lo": d_lo, "diff_hi": d_hi, "better": better})
    table = pd.DataFrame(rows)
    winners = set(table["better"])
    dominates = winners.pop() if len(winners) == 1 and None not in winners else None
    return Comparison(metric=results[archs[0]][0].law.metric, law=law, arch_a=archs[0], arch_b=archs[1],
                      higher_is_better=accuracy, rows=table, dominates=dominates)


def comparison_law(runs: pd.DataFrame, metric: str | None = None, preferred: str | None = None) -> str:
    """One law form for both architectures of :func:`compare`: ``preferred`` when each architecture's runs can
    carry it (its inputs present, enough distinct configurations), else the default choice that both can carry
    (chinchilla if both would take it, else power-compute). The CLI and the dashboard both ask this."""
    archs = list(runs["arch"].astype(str).value_counts().index[:2]) if "arch" in runs.columns else []
    datas = [prepare(runs[runs["arch"].astype(str) == a], metric, ()) for a in archs]
    if preferred not in (None, "default", "auto"):
        form = get_form(preferred)
        if all(all(k in d.logx for k in form.inputs) and len(np.unique(d.groups)) >= form.min_runs for d in datas):
            return preferred
    chosen = {resolve_law(d, "default") for d in datas}
    return chosen.pop() if len(chosen) == 1 else "power-compute"


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
    chinchilla = FORMS["chinchilla"]
    two_axes = {"params", "samples"} <= set(data.logx) and all(np.ptp(data.logx[a]) > 0 for a in chinchilla.inputs)
    if two_axes and len(np.unique(data.groups)) >= chinchilla.min_runs:
        return "chinchilla"
    return "power-compute"

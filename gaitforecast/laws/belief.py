"""What a design believes about the law: the bootstrap's refits, with any parameter the runs do not identify
spread over a prior range, and the forecast (the target quantity at a target budget) across those members.

:func:`fit_for_design` fits and bootstraps the law; :func:`forecast_ensemble` turns its refits into the members
:mod:`gaitforecast.laws.design` ranks candidate runs with (:func:`design_ensemble`) and the target quantity each
member gives (:func:`target_draws`). Parameters the runs do not identify are held by the fit and would have no
spread in the bootstrap, so here they are spread: an exponent uniformly over EXPONENT_PRIOR, a floor E
log-uniformly over FLOOR_PRIOR_DECADES below the best run; each member is refitted on its own resample with its
draw held and kept when that fit stays inside the 95 % profile-likelihood region (chi-square on the log
residuals). The design's assumptions are in :mod:`gaitforecast.laws.design` and the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.allocate import CostModel, optimal_draws
from gaitforecast.laws.bootstrap import BootstrapResult, bootstrap, resample_weights
from gaitforecast.laws.data import prepare
from gaitforecast.laws.fit import FittedLaw, fit_data, refine_batch
from gaitforecast.laws.forms import FORMS
from gaitforecast.laws.threads import single_blas_thread

OBJECTIVES = ("metric", "n_opt")
LEVEL = 0.95
EXPONENT_PRIOR = (0.05, 1.0)  # where an exponent the runs do not identify is spread (published laws: 0.07-0.7)
FLOOR_PRIOR_DECADES = 2.0  # a floor E they do not identify: from 1 % to 100 % of the best run's value
_CHI2_95 = (3.841, 5.991, 7.815, 9.488, 11.070)  # 95 % chi-square quantiles, 1 to 5 degrees of freedom
# exponent -> (its amplitude, the axis it acts on): a new exponent keeps its term's size at the runs' median input
_AMPLITUDE = {"alpha": ("log_A", "params"), "beta": ("log_B", "samples")}


class _Pinned:
    """A law form whose parameters in ``pinned`` do not move in a refit (their Jacobian columns are zero), each
    batch member at its own value: the batch solver's fixed parameters are shared by the batch, these are not."""

    def __init__(self, form, pinned: np.ndarray) -> None:
        self.form, self.free = form, ~pinned

    def log_predict(self, theta, logx):
        out, jac = self.form.log_predict(theta, logx)
        return out, jac * self.free


def _spread_ranges(law: FittedLaw) -> dict[int, tuple[float, float]]:
    """Held parameters the design spreads, with the range: exponents over EXPONENT_PRIOR, a floor over
    FLOOR_PRIOR_DECADES below the best run (theta is log E)."""
    names, bounds = law.form.theta_names(), law.form.bounds(law.data.logy)
    out = {}
    for i in law.held:
        lo, hi = bounds[i]
        if names[i] in law.form.exponent_names:
            out[i] = (max(lo, EXPONENT_PRIOR[0]), min(hi, EXPONENT_PRIOR[1]))
        elif names[i] == "log_E":
            best = float(law.data.logy.min())
            out[i] = (max(lo, best - FLOOR_PRIOR_DECADES * np.log(10.0)), min(hi, best))
    return {i: r for i, r in out.items() if r[1] > r[0]}


def _inlier_rss(law: FittedLaw, thetas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum of squared log residuals per member over the runs within 3 robust SD of the point fit."""
    logx = {k: law.data.logx[k] for k in law.form.inputs}
    resid = law.data.logy - law.form.log_predict(law.theta, logx)[0]
    mad = 1.4826 * np.median(np.abs(resid - np.median(resid)))
    inlier = np.abs(resid - np.median(resid)) <= 3.0 * mad + 1e-12
    r = law.form.log_predict(thetas, logx)[0] - law.data.logy
    return np.sum(weights * inlier * r * r, axis=-1), weights @ inlier


@single_blas_thread
def design_ensemble(boot: BootstrapResult, seed: int = 0) -> tuple[np.ndarray, dict[str, list[float]], list[str]]:
    """The members the design reasons with [M, p]: the bootstrap's refits, with any parameter the runs do not
    identify spread over its prior range (see the module's assumptions); also {name: [lo, hi]} spread and notes."""
    law = boot.law
    ranges = _spread_ranges(law)
    if not ranges:
        return boot.thetas, {}, []
    form, data = law.form, law.data
    names = form.theta_names()
    progress.step(f"spreading {', '.join(form.param_of(names[i]) for i in ranges)} for the design")
    rng = np.random.default_rng(seed)
    start = np.array(boot.thetas, dtype=float)
    pinned = np.zeros(len(names), bool)
    for i, (lo, hi) in ranges.items():
        draws = rng.uniform(lo, hi, len(start))
        pair = _AMPLITUDE.get(names[i]) or (("log_A", form.inputs[0]) if names[i] == "k" else None)
        if pair and pair[0] in names and pair[1] in data.logx:  # keep the term's size at the runs' median input
            start[:, names.index(pair[0])] += (draws - start[:, i]) * float(np.median(data.logx[pair[1]]))
        start[:, i] = draws
        pinned[i] = True
    bounds = [ranges.get(i, b) for i, b in enumerate(law.bounds())]
    weights = resample_weights(data.groups, len(start), boot.seed)  # each member's own resample
    logx = {k: data.logx[k] for k in form.inputs}
    thetas, _, _ = refine_batch(_Pinned(form, pinned), start, logx, data.logy, law.huber_delta, weights,
                                bounds=bounds)
    rss_spread, n_in = _inlier_rss(law, thetas, weights)
    rss_boot, _ = _inlier_rss(law, boot.thetas, weights)
    stat = n_in * np.log(np.maximum(rss_spread, 1e-300) / np.maximum(rss_boot, 1e-300))
    keep = np.isfinite(stat) & (stat < _CHI2_95[min(len(ranges), len(_CHI2_95)) - 1])
    spread = {form.param_of(names[i]): [float(lo), float(hi)] for i, (lo, hi) in ranges.items()}
    if keep.sum() < max(20, len(start) // 10):
        return boot.thetas, {}, [f"could not spread {', '.join(spread)} (only {int(keep.sum())} of {len(start)} "
                                 "draws fit the runs): the design treats them as known"]
    return thetas[keep], spread, []


def target_draws(law: FittedLaw, thetas: np.ndarray, target_budget: float, cost: CostModel,
                 objective: str = "metric") -> np.ndarray:
    """The target quantity per member, in log units: ln of the fitted target at each member's compute-optimal
    split of ``target_budget`` (``"metric"``), or ln N_opt (``"n_opt"``)."""
    if objective not in OBJECTIVES:
        raise GaitforecastError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    n_opt, _, y = optimal_draws(law, thetas, target_budget, cost)
    if objective == "metric":
        return np.log(y)
    if n_opt is None:
        raise GaitforecastError(f"law {law.law!r} is in compute only and has no N_opt; use the metric objective "
                                "or a law in params and samples (chinchilla)")
    return np.log(n_opt)


def _width(g: np.ndarray, law: FittedLaw, objective: str) -> tuple[float, list[float]]:
    """95 % width of the target quantity from its log draws: metric units, or decades of N_opt."""
    lo, hi = np.percentile(g, [50 * (1 - LEVEL), 100 - 50 * (1 - LEVEL)])
    if objective == "n_opt":
        return float((hi - lo) / np.log(10.0)), [float(np.exp(lo)), float(np.exp(hi))]
    a, b = law.data.to_metric_units(np.exp(np.array([lo, hi])))
    return float(abs(b - a)), [float(min(a, b)), float(max(a, b))]


@dataclass(frozen=True)
class Forecast:
    """The target quantity across the design's members: log draws ``draws`` [M] (members ``thetas`` [M, p]),
    its 95 % width and interval (metric units, or decades and parameters of N_opt) and the point fit's value."""

    law: FittedLaw
    objective: str
    target_budget: float
    thetas: np.ndarray = field(repr=False)
    draws: np.ndarray = field(repr=False)
    width: float
    interval: list[float]
    predicted: float
    spread: dict[str, list[float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def width_units(self) -> str:
        return "decades of N_opt" if self.objective == "n_opt" else self.law.metric


@single_blas_thread
def forecast_ensemble(boot: BootstrapResult, target_budget: float, cost: CostModel, objective: str = "metric",
                      seed: int = 0) -> Forecast:
    """The forecast a design narrows: the target quantity at ``target_budget`` for every member of
    :func:`design_ensemble` (members without a finite answer are left out)."""
    if not (np.isfinite(target_budget) and target_budget > 0):
        raise GaitforecastError(f"target budget must be a positive number of FLOPs, got {target_budget}")
    law = boot.law
    thetas, spread, notes = design_ensemble(boot, seed)
    g = target_draws(law, thetas, target_budget, cost, objective)
    ok = np.isfinite(g)
    if ok.sum() < 20:
        raise GaitforecastError(f"only {int(ok.sum())} ensemble members give a finite forecast at "
                                f"{target_budget:.3g} FLOPs; pick a target budget nearer the runs")
    width, interval = _width(g[ok], law, objective)
    point = target_draws(law, law.theta[None, :], target_budget, cost, objective)[0]
    predicted = float(law.data.to_metric_units(np.exp(point))) if objective == "metric" else float(np.exp(point))
    return Forecast(law=law, objective=objective, target_budget=float(target_budget), thetas=thetas[ok],
                    draws=g[ok], width=width, interval=interval, predicted=predicted, spread=spread,
                    notes=tuple(notes))


def fit_for_design(runs: pd.DataFrame, metric: str | None, law: str, n_resamples: int = 200, seed: int = 0,
                   kind: str | None = None) -> BootstrapResult:
    """The law a design reasons with, bootstrapped; a GaitforecastError when the runs cannot carry it yet."""
    form = FORMS[law]
    data = prepare(runs, metric, form.inputs, form.accuracy_target, kind=kind)
    configs = len(np.unique(data.groups))
    if configs < form.min_runs:
        raise GaitforecastError(f"{configs} configurations, the {law} law needs {form.min_runs}")
    # Without the profile-likelihood pass (calibrate=False): it costs ~10x the fit, and a design needs no held
    # exponent for what the bootstrap shows anyway (an exponent the runs leave loose wanders across the refits);
    # parameters on a bound are still held, and the design ensemble spreads them.
    return bootstrap(fit_data(form, data, calibrate=False), n_resamples=n_resamples, seed=seed)



"""Which architecture is better, and which scales better with data? Two families compared with intervals.

:func:`compare` fits each of the two most-run architectures with one law form, bootstraps each on its own runs
(independent resamples: architecture i is resampled with ``seed + i``), and reads off

* the metric of each at the compute-optimal configuration of a range of budgets, with the difference B - A and
  its percentile interval (draw k of A against draw k of B);
* with the Chinchilla law, each family's exponents (alpha for parameters, beta for data) with percentile
  intervals, and the difference in the data exponent beta(A) - beta(B) with its interval from the same paired
  draws (:class:`ExponentComparison`): the larger beta is the family whose metric falls faster with data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.allocate import CostModel, cost_model_for, optimal_draws
from gaitforecast.laws.backtest import resolve_law, shortfall
from gaitforecast.laws.bootstrap import BootstrapResult, bootstrap
from gaitforecast.laws.data import prepare
from gaitforecast.laws.diagnostics import unidentified_exponents
from gaitforecast.laws.fit import fit_data
from gaitforecast.laws.forms import get_form
from gaitforecast.laws.threads import single_blas_thread

EXPONENTS = ("alpha", "beta")  # the model and data exponents; only a law with both has them (chinchilla)


def _level_text(level: float) -> str:
    return f"{100 * level:g} %"


@dataclass(frozen=True)
class ExponentComparison:
    """Two architectures' Chinchilla exponents and the difference in the data exponent, with intervals.

    ``exponents[arch][name]`` is ``[value, lo, hi]`` (point fit, percentile interval of the bootstrap draws);
    lo and hi are None for an exponent the runs do not identify (held fixed by the fit, so its draws do not
    vary). ``beta_difference`` is ``[value, lo, hi]`` of beta(archs[0]) - beta(archs[1]), the interval from the
    paired draws of the two independent bootstraps; None when either beta is held.
    """

    archs: tuple[str, str]
    exponents: dict[str, dict[str, list[float | None]]]
    beta_difference: list[float] | None
    level: float = 0.95
    notes: list[str] = field(default_factory=list)

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval of the beta difference excludes zero (the families' data exponents differ)."""
        if self.beta_difference is None:
            return False
        _, lo, hi = self.beta_difference
        return lo > 0 or hi < 0

    @property
    def scales_better(self) -> str | None:
        """The architecture with the larger data exponent when the interval excludes zero, else None."""
        if not self.excludes_zero:
            return None
        return self.archs[0] if self.beta_difference[1] > 0 else self.archs[1]

    def verdict(self) -> str:
        """Which family scales better with data, in words, and whether the interval says so."""
        a, b = self.archs
        if self.beta_difference is None:
            return "the data exponents cannot be compared: " + "; ".join(self.notes)
        d, lo, hi = self.beta_difference
        beta = {arch: self.exponents[arch]["beta"][0] for arch in self.archs}
        larger = self.scales_better or (a if d > 0 else b)
        smaller = b if larger == a else a
        said = (f"beta {beta[larger]:.3g} for {larger} against {beta[smaller]:.3g} for {smaller}; beta({a}) - "
                f"beta({b}) = {d:+.3g}, {_level_text(self.level)} interval [{lo:+.3g}, {hi:+.3g}]")
        if self.excludes_zero:
            return f"{larger} scales better with data ({said}, which excludes zero)"
        return (f"neither family scales better with data with {_level_text(self.level)} confidence ({said}, "
                "which includes zero)")

    def to_dict(self) -> dict:
        return {"exponents": self.exponents, "beta_difference": self.beta_difference,
                "beta_difference_of": list(self.archs), "beta_verdict": self.verdict(),
                "exponents_level": self.level, "exponents_notes": list(self.notes)}


def _interval(draws: np.ndarray, level: float) -> list[float]:
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(draws, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def compare_exponents(boots: dict[str, BootstrapResult], level: float = 0.95) -> ExponentComparison:
    """The exponents of two bootstrapped Chinchilla fits (``{arch: bootstrap}``, first minus second) and the
    difference of their data exponents. The two bootstraps must be independent (different seeds): draw k of
    one is paired with draw k of the other."""
    if len(boots) != 2:
        raise GaitforecastError(f"compare_exponents takes two architectures' fits, got {len(boots)}")
    archs = tuple(boots)
    for arch, boot in boots.items():
        if not set(EXPONENTS) <= set(boot.law.form.exponent_names):
            raise GaitforecastError(f"the {boot.law.law} law of {arch!r} has no alpha and beta; fit chinchilla")
    exponents, draws, notes = {}, {}, []
    for arch, boot in boots.items():
        samples, held = boot.param_samples(), boot.law.fixed
        poor = unidentified_exponents(boot)
        exponents[arch] = {}
        for name in EXPONENTS:
            value = float(boot.law.params[name])
            if name in held:
                exponents[arch][name] = [value, None, None]
                notes.append(f"{name} of {arch} is held at {value:.3g}: its runs do not identify it, so it has "
                             "no interval")
                continue
            exponents[arch][name] = [value, *_interval(samples[name], level)]
            if name in poor:
                lo, hi = poor[name]
                notes.append(f"{name} of {arch} is poorly identified by its runs ({_level_text(boot.level)} "
                             f"interval [{lo:.3g}, {hi:.3g}])")
        draws[arch] = samples["beta"]
    a, b = archs
    difference = None
    if not any("beta" in boots[arch].law.fixed for arch in archs):
        m = min(len(draws[a]), len(draws[b]))
        point = exponents[a]["beta"][0] - exponents[b]["beta"][0]
        difference = [point, *_interval(draws[a][:m] - draws[b][:m], level)]
    return ExponentComparison(archs=archs, exponents=exponents, beta_difference=difference, level=level,
                              notes=notes)


@dataclass(frozen=True)
class Comparison:
    """Metric of each architecture at matched compute (compute-optimal where the law allocates), B minus A; with
    the Chinchilla law also their exponents (``exponents``; else None and ``exponents_note`` says why)."""

    metric: str
    law: str
    arch_a: str
    arch_b: str
    higher_is_better: bool
    rows: pd.DataFrame
    dominates: str | None  # the arch better at every budget with 95 % confidence, if any
    subsampled: dict | None = None  # arch -> the subsample it was fitted on (see stratified_sample), if any
    warnings: list[str] = field(default_factory=list)
    exponents: ExponentComparison | None = None
    exponents_note: str | None = None  # why there are no exponents

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("rows", "exponents", "exponents_note")}
        out["rows"] = self.rows.to_dict(orient="records")
        if self.exponents is not None:
            out.update(self.exponents.to_dict())
        else:
            out.update({"exponents": None, "beta_difference": None, "beta_difference_of": None,
                        "beta_verdict": None, "exponents_level": None,
                        "exponents_notes": [self.exponents_note] if self.exponents_note else []})
        return out


def compared_archs(runs: pd.DataFrame) -> list[str]:
    """The two architectures :func:`compare` compares: the two with the most runs (none without an arch column)."""
    return list(runs["arch"].value_counts().index[:2].astype(str)) if "arch" in runs.columns else []


def _no_exponents(law: str, why_not: dict[str, str | None]) -> str:
    """Why a comparison with ``law`` has no exponents; ``why_not`` says, per architecture, why its runs cannot
    carry chinchilla (None: they can)."""
    short = "; ".join(f"{arch}: {why}" for arch, why in why_not.items() if why)
    if short:
        return (f"no exponents or beta difference: the {law} law has no separate model and data exponents, and "
                f"chinchilla, which has them, needs more runs than the store has ({short})")
    return (f"no exponents or beta difference: the {law} law has no separate model and data exponents; compare "
            "with --law chinchilla (each architecture's runs carry it) to get them")


@single_blas_thread
def compare(runs: pd.DataFrame, metric: str | None = None, law: str = "chinchilla", budgets=None,
            n_resamples: int = 500, seed: int = 0, level: float = 0.95,
            cost_for: Callable[[pd.DataFrame, str], CostModel] = cost_model_for,
            archs: list[str] | None = None) -> Comparison:
    """Fit each of the two architectures (``archs``, default :func:`compared_archs`), compare the metric at matched
    compute. ``cost_for(runs, arch)`` prices a configuration (default: the runs' FLOPs / (N x D) ratio).

    The difference (B - A, in the metric's units) comes with a percentile interval from independent bootstraps
    (architecture i resampled with ``seed + i``: one seed would resample matching positions of similar grids
    together). Budgets default to 8 points across the compute range both architectures cover. With the
    Chinchilla law the result also carries both families' exponents and beta(A) - beta(B) (see
    :func:`compare_exponents`).
    """
    if "arch" not in runs.columns or runs["arch"].dropna().nunique() < 2:
        raise GaitforecastError("compare needs runs of at least two architectures (an 'arch' column)")
    form = get_form(law)
    archs = compared_archs(runs) if archs is None else list(archs)
    results, why_not = {}, {}
    for i, arch in enumerate(progress.over(archs, "fitting each architecture", unit="architectures")):
        part = runs[runs["arch"].astype(str) == arch]
        data = prepare(part, metric, ("flops",) + form.inputs)
        try:
            boot = bootstrap(fit_data(form, data), n_resamples=n_resamples, seed=seed + i)
        except GaitforecastError as exc:  # name the family whose runs the form could not be refitted on
            raise GaitforecastError(f"{arch}: {str(exc).rstrip('.')}") from exc
        cost = cost_for(part, arch) if "params" in form.inputs else CostModel.per_param_sample(6.0)
        results[arch] = (boot, cost, data.logx["flops"])
        why_not[arch] = shortfall(data, "chinchilla")
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
    with_exponents = set(EXPONENTS) <= set(form.exponent_names)
    exponents = (compare_exponents({arch: results[arch][0] for arch in archs}, level) if with_exponents else None)
    return Comparison(metric=results[archs[0]][0].law.metric, law=law, arch_a=archs[0], arch_b=archs[1],
                      higher_is_better=accuracy, rows=table, dominates=dominates, exponents=exponents,
                      exponents_note=None if with_exponents else _no_exponents(law, why_not))


def comparison_law(runs: pd.DataFrame, metric: str | None = None, preferred: str | None = None) -> str:
    """One law form for both architectures of :func:`compare`: ``preferred`` when each architecture's runs can
    carry it (its inputs present and varying, enough distinct configurations), else the default choice that both
    can carry (chinchilla if both would take it, else power-compute). The CLI and the dashboard both ask this."""
    archs = list(runs["arch"].astype(str).value_counts().index[:2]) if "arch" in runs.columns else []
    datas = [prepare(runs[runs["arch"].astype(str) == a], metric, ()) for a in archs]
    if preferred not in (None, "default", "auto"):
        if all(shortfall(d, preferred) is None for d in datas):
            return preferred
    chosen = {resolve_law(d, "default") for d in datas}
    return chosen.pop() if len(chosen) == 1 else "power-compute"

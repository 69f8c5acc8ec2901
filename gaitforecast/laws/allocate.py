"""Compute-optimal allocation: for a FLOP budget C, which model size N and how many samples D.

The cost of a run is C = flops_per_sample(N) * D. For imported tables that is a constant FLOPs per
(parameter x sample) (6 in Chinchilla's convention); for gaitforecast's own models it is the exact per-sample
training FLOPs of the architecture family (attention makes 6ND wrong), from a family table the caller passes in
(``models.family_table`` for gaitforecast's own runs, via ``gaitforecast.forecast.cost_model``).
The optimum is found numerically (coarse log grid, then golden-section search) for every bootstrap draw at
once, so N_opt, D_opt, samples per parameter and the predicted metric come with intervals. When the cost is
k*N*D the closed form of Hoffmann et al. applies and :func:`closed_form` gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.threads import single_blas_thread
from gaitforecast.laws.bootstrap import BootstrapResult, _point_residuals, extrapolation_of
from gaitforecast.laws.fit import FittedLaw

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class CostModel:
    """Training FLOPs per sample as a function of parameter count: ``flops_per_sample(params)``."""

    name: str
    flops_per_sample: Callable[[np.ndarray], np.ndarray]
    params_range: tuple[float, float] | None = None  # where the cost is known exactly (family table span)
    ratio: float | None = None  # k in C = k N D, when the cost is that simple

    @classmethod
    def per_param_sample(cls, ratio: float = 6.0) -> "CostModel":
        """C = ratio * N * D (Chinchilla: ratio 6)."""
        if not (np.isfinite(ratio) and ratio > 0):
            raise GaitforecastError(f"FLOPs per parameter-sample must be positive, got {ratio}")
        return cls(name=f"{ratio:.4g}*N*D", flops_per_sample=lambda n: ratio * np.asarray(n, float), ratio=ratio)

    @classmethod
    def from_family_table(cls, table: pd.DataFrame, name: str = "family") -> "CostModel":
        """Exact per-sample FLOPs of an architecture family (columns params, train_flops_per_sample), interpolated
        log-log between widths and extended along the end slopes beyond them."""
        t = table.sort_values("params").drop_duplicates("params")
        if len(t) < 2:
            raise GaitforecastError("a family table needs at least two widths to interpolate FLOPs per sample")
        ln_n = np.log(t["params"].to_numpy(float))
        ln_f = np.log(t["train_flops_per_sample"].to_numpy(float))

        def flops_per_sample(n):
            x = np.log(np.asarray(n, float))
            inside = np.interp(x, ln_n, ln_f)
            low = ln_f[0] + (x - ln_n[0]) * (ln_f[1] - ln_f[0]) / (ln_n[1] - ln_n[0])
            high = ln_f[-1] + (x - ln_n[-1]) * (ln_f[-1] - ln_f[-2]) / (ln_n[-1] - ln_n[-2])
            return np.exp(np.where(x < ln_n[0], low, np.where(x > ln_n[-1], high, inside)))

        return cls(name=name, flops_per_sample=flops_per_sample, params_range=(float(t["params"].min()),
                                                                              float(t["params"].max())))


FamilyTable = Callable[..., pd.DataFrame]  # (arch, frames=, widths=) -> params, train_flops_per_sample per width


def cost_model_for(runs: pd.DataFrame, arch: str | None = None,
                   family_table: FamilyTable | None = None) -> CostModel:
    """The cost model that fits these runs: their family's exact FLOPs, else the table's FLOPs / (N x D) ratio.

    Own runs (source 'gaitforecast') are priced from ``family_table(arch, frames=, widths=)`` when the caller
    passes one (``gaitforecast.forecast.cost_model`` passes ``models.family_table``; the laws do not import the
    models), with frames from the run config; otherwise, and for imported runs, the median FLOPs / (N x D).
    """
    own = runs[runs["source"].astype(str) == "gaitforecast"] if "source" in runs.columns else runs.iloc[:0]
    if arch is not None and "arch" in own.columns:
        own = own[own["arch"].astype(str) == arch]
    if len(own) and family_table is not None:
        model = _family_cost(own, family_table)
        if model is not None:
            return model
    need = {"params", "samples", "flops"}
    if need <= set(runs.columns):
        ratio = runs["flops"].astype(float) / (runs["params"].astype(float) * runs["samples"].astype(float))
        ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
        if len(ratio):
            return CostModel.per_param_sample(float(np.median(ratio)))
    return CostModel.per_param_sample(6.0)


def _family_cost(own: pd.DataFrame, family_table: FamilyTable) -> CostModel | None:
    """Cost of the most common architecture in ``own`` from its family table, or None if unavailable."""
    import json

    arch = own["arch"].astype(str).mode().iloc[0]
    frames = 60
    try:  # a planned run keeps its window length in the model (and data) sections of its config
        config = json.loads(own["config"].dropna().iloc[0])
        frames = int(config.get("model", {}).get("frames") or config.get("data", {}).get("frames")
                     or config.get("frames", 60))
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        pass
    widths = sorted({int(w) for w in own["width"].dropna()}) if "width" in own.columns else []
    lo, hi = (max(widths[0] // 4, 2), widths[-1] * 8) if widths else (8, 1024)
    # Dense widths over (and beyond) the swept range so the search sees the real FLOP curve; a family
    # accepts only some widths (head divisibility, even head size), so keep those its table accepts.
    candidates = sorted({int(round(w / 8.0)) * 8 or 8 for w in np.geomspace(lo, hi, 24)} | set(widths))
    tables = []
    for width in progress.over(candidates, f"pricing {arch} widths (FLOPs per sample)", unit="widths"):
        try:
            tables.append(family_table(arch, frames=frames, widths=[width]))
        except (ValueError, KeyError):  # a width the family does not accept, or an arch it does not know
            continue
    if len(tables) < 2:
        return None
    table = pd.concat(tables, ignore_index=True)
    return CostModel.from_family_table(table, name=f"{arch} family (frames={frames})")


def closed_form(params: dict, budget: float, ratio: float = 6.0) -> tuple[float, float]:
    """Hoffmann et al.'s N_opt, D_opt for E + A/N^alpha + B/D^beta when C = ratio * N * D."""
    alpha, beta, a_coef, b_coef = params["alpha"], params["beta"], params["A"], params["B"]
    g = (alpha * a_coef / (beta * b_coef)) ** (1.0 / (alpha + beta))
    n_opt = g * (budget / ratio) ** (beta / (alpha + beta))
    return float(n_opt), float(budget / (ratio * n_opt))


def _search(law: FittedLaw, thetas: np.ndarray, budget: float, cost: CostModel) -> tuple[np.ndarray, np.ndarray]:
    """ln N_opt [R] and ln(law value) at it, by grid + golden section in ln N, for every theta at once."""
    data_ln_n = law.data.logx["params"]
    lo, hi = max(0.0, data_ln_n.min() - 10.0), data_ln_n.max() + 15.0

    def value(ln_n):  # ln_n [R, m] -> law's log value [R, m]
        ln_d = np.log(budget) - np.log(cost.flops_per_sample(np.exp(ln_n)))
        pred, _ = law.form.log_predict(thetas, {"params": ln_n, "samples": ln_d})
        return np.where(ln_d > 0, pred, np.inf)  # fewer than one sample is not a run

    grid = np.linspace(lo, hi, 1201)[None, :]
    vals = value(np.broadcast_to(grid, (len(thetas), grid.shape[1])))
    best = np.argmin(vals, axis=1)
    step = grid[0, 1] - grid[0, 0]
    a, b = grid[0, best] - step, grid[0, best] + step
    for _ in range(40):
        c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        fc, fd = value(c[:, None])[:, 0], value(d[:, None])[:, 0]
        left = fc < fd
        b, a = np.where(left, d, b), np.where(left, a, c)
    ln_n = 0.5 * (a + b)
    return ln_n, value(ln_n[:, None])[:, 0]


def optimal_draws(law: FittedLaw, thetas: np.ndarray, budget: float, cost: CostModel,
                  ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(N_opt, D_opt, law value at the optimum) for each theta [R, p] at ``budget``; N and D are None for a law
    in compute only. The law value is in the fitted target's units (error for accuracy metrics)."""
    inputs = set(law.form.inputs)
    if inputs == {"params", "samples"}:
        ln_n, ln_y = _search(law, thetas, budget, cost)
        n_opt = np.exp(ln_n)
        return n_opt, budget / cost.flops_per_sample(n_opt), np.exp(ln_y)
    if inputs == {"flops"}:
        return None, None, np.exp(law.form.log_predict(thetas, {"flops": np.array([np.log(budget)])})[0][:, 0])
    raise GaitforecastError(
        f"law {law.law!r} cannot answer a compute budget; use --law chinchilla (allocates N and D) "
        "or power-compute"
    )


@dataclass(frozen=True)
class Allocation:
    """The compute-optimal configuration at one budget, with percentile intervals from the bootstrap."""

    budget_flops: float
    params_opt: float | None
    samples_opt: float | None
    samples_per_param: float | None
    predicted: float
    params_opt_ci: list[float] | None
    samples_opt_ci: list[float] | None
    samples_per_param_ci: list[float] | None
    predicted_ci: list[float] | None
    predicted_pi: list[float] | None
    cost_model: str
    notes: tuple[str, ...] = ()
    recommended: bool = True  # False: the split is outside the family's sizes or not identified (see ``why``)
    why: str | None = None

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@single_blas_thread
def allocate(fit: FittedLaw | BootstrapResult, budget: float, cost: CostModel | None = None,
             level: float = 0.95, seed: int = 1) -> Allocation:
    """N_opt, D_opt, samples per parameter and the predicted metric at ``budget`` FLOPs.

    Needs a law in params and samples (chinchilla) for the split; a law in compute (power-compute,
    sigmoid-compute) gives the predicted metric only. Pass a :class:`BootstrapResult` to get intervals.
    """
    if not (np.isfinite(budget) and budget > 0):
        raise GaitforecastError(f"budget must be a positive number of FLOPs, got {budget}")
    boot = fit if isinstance(fit, BootstrapResult) else None
    law = boot.law if boot else fit
    smallest = float(np.exp(_log_flops(law).min()))
    if budget < smallest * 1e-3:
        raise GaitforecastError(
            f"a budget of {budget:.3g} FLOPs is over three decades below the smallest fitted run ({smallest:.3g} "
            "FLOPs); the law says nothing there. Ask for a budget near or above the runs' compute")
    cost = cost or CostModel.per_param_sample(6.0)
    thetas = np.vstack([law.theta[None, :]] + ([boot.thetas] if boot else []))
    n_opt, d_opt, y = optimal_draws(law, thetas, budget, cost)
    notes: list[str] = []
    if n_opt is None:
        notes.append(f"law {law.law!r} is in compute only: it predicts the metric but cannot split N and D")
    else:
        lo_n, hi_n = np.exp(law.data.logx["params"].min() - 10.0), np.exp(law.data.logx["params"].max() + 15.0)
        if np.isclose(n_opt[0], lo_n, rtol=1e-3) or np.isclose(n_opt[0], hi_n, rtol=1e-3):
            notes.append("the optimum sits at the edge of the searched model sizes; the law may not bend there")
        if cost.params_range and not cost.params_range[0] <= n_opt[0] <= cost.params_range[1]:
            notes.append("N_opt lies outside the architecture family table; its FLOPs per sample are extrapolated")
        if n_opt[0] > np.exp(law.data.logx["params"].max()) * 10:
            notes.append("N_opt is over 10x the largest fitted run: an extrapolation, read the interval")
    if budget > np.exp(_log_flops(law).max()) * 100:
        notes.append("budget is over 100x the largest fitted run's compute")
    recommended, why = True, None
    if n_opt is not None:
        lo_ci, hi_ci = (np.percentile(n_opt[1:], [2.5, 97.5]) if boot is not None else (n_opt[0], n_opt[0]))
        if cost.params_range and not cost.params_range[0] * 0.999 <= n_opt[0] <= cost.params_range[1] * 1.001:
            recommended = False
            why = (f"N_opt {n_opt[0]:.3g} is outside the sizes of the {cost.name} "
                   f"({cost.params_range[0]:.3g} to {cost.params_range[1]:.3g} parameters): no model of the family "
                   "has it, so this split is not a recommendation")
        elif boot is not None and np.log10(hi_ci / lo_ci) > 2.0:
            recommended = False
            why = (f"N_opt's 95 % interval [{lo_ci:.3g}, {hi_ci:.3g}] spans {np.log10(hi_ci / lo_ci):.1f} decades: "
                   "these runs do not identify the split between model size and data; add runs that vary both")

    def ci(values):
        if boot is None:
            return None
        return [float(v) for v in boot._quantiles(values[1:], level)]

    def metric_interval(lo_hi):
        if lo_hi is None:
            return None
        a, b = law.data.to_metric_units(np.array(lo_hi))
        return [float(min(a, b)), float(max(a, b))]

    if not np.isfinite(y[0]) or (n_opt is not None and not np.isfinite(n_opt[0])):
        raise GaitforecastError(f"the {law.law} law has no finite answer at {budget:.3g} FLOPs (its optimum runs off "
                                "the searched model sizes); ask for a budget within the runs' range or beyond it")
    pi = None
    if boot is not None:
        resid = _point_residuals(law)
        rng = np.random.default_rng(seed)
        noisy = y[1:] * np.exp(rng.choice(resid, size=len(y) - 1))
        extra = extrapolation_of(law)
        if extra is not None:  # beyond the runs: the rollouts' extrapolation error, as BootstrapResult.predict
            at = ({"params": np.log(n_opt[1:]), "samples": np.log(d_opt[1:])} if n_opt is not None
                  else {"flops": np.full(len(y) - 1, np.log(budget))})
            noisy = extra.widen(noisy, at, law.form.inputs, rng)
        pi = metric_interval(boot._quantiles(noisy, level))
    return Allocation(
        budget_flops=float(budget),
        params_opt=None if n_opt is None else float(n_opt[0]),
        samples_opt=None if d_opt is None else float(d_opt[0]),
        samples_per_param=None if n_opt is None else float(d_opt[0] / n_opt[0]),
        predicted=float(law.data.to_metric_units(y[0])),
        params_opt_ci=None if n_opt is None else ci(n_opt),
        samples_opt_ci=None if d_opt is None else ci(d_opt),
        samples_per_param_ci=None if n_opt is None else ci(d_opt / n_opt),
        predicted_ci=metric_interval(ci(y)), predicted_pi=pi, cost_model=cost.name, notes=tuple(notes),
        recommended=recommended, why=why,
    )


def _log_flops(law: FittedLaw) -> np.ndarray:
    if "flops" in law.data.logx:
        return law.data.logx["flops"]
    return law.data.logx["params"] + law.data.logx["samples"] + np.log(6.0)


@single_blas_thread
def frontier(fit: FittedLaw | BootstrapResult, cost: CostModel | None = None, budgets=None,
             n_points: int = 30) -> pd.DataFrame:
    """Allocation over a range of budgets (default: the runs' compute range up to 100x beyond), one row each.

    Cheap enough for a dashboard: the search is vectorised over bootstrap draws.
    """
    law = fit.law if isinstance(fit, BootstrapResult) else fit
    if budgets is None:
        lf = _log_flops(law)
        budgets = np.geomspace(np.exp(lf.min()), np.exp(lf.max()) * 100, n_points)
    budgets = np.atleast_1d(budgets)
    rows = [allocate(fit, float(c), cost).to_dict()
            for c in progress.over(budgets, "allocating along the frontier", unit="budgets")]
    return pd.DataFrame(rows).drop(columns=["notes"])

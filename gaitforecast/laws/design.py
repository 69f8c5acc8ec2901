"""Which run to train next: candidate runs ranked by how much each is expected to narrow the forecast at a target
budget, per FLOP it costs.

The forecast's uncertainty is the bootstrap ensemble's. Every member (a refit on resampled runs) gives a target
quantity g, the law's metric at its own compute-optimal split of the target budget (``objective="metric"``) or
ln N_opt (``"n_opt"``), and a prediction h_c at every candidate run c. Where the members disagree about h_c *and*
that disagreement goes with their disagreement about g, training c and seeing its result rules members out.
In the ensemble's own covariances (an ensemble Kalman update, as weather forecasting assimilates observations),
observing c with one run's scatter s^2 leaves

    var(g | y_c) = var(g) - cov(g, h_c)^2 / (var(h_c) + s^2)

Runs are planned greedily, most variance removed per FLOP first, each pick conditioning the ensemble (a serial
square-root update of its anomalies) before the next is chosen, so a plan does not pay twice for one question;
with a finite budget the plans that start from one of the runs removing most variance outright are tried too
and the plan leaving the least variance wins (many cheap runs can be worth less than one large one); its runs are
then put in order, most variance removed per FLOP first, so a large run waits for the refit after the cheap ones. Use
:func:`suggest` on a :class:`BootstrapResult` and candidate arrays, or :func:`plan_next` on a runs table (fit,
bootstrap and suggest in one call; the adaptive sweep and the benchmark use it). The assumptions, also in the README:

- the ensemble is the belief: the bootstrap's spread of the parameters is taken as a posterior and updated
  linearly (exact for a linear-Gaussian law, first order otherwise); the *expected* width after a run is today's
  95 % width times the share of the target's standard deviation the update leaves, and the width a refit gets
  after the run varies around it (it depends on what the run measures);
- a new run scatters about the law as the fitted runs do: s is the point fit's robust residual SD (log units);
- the law's form is right: runs are chosen to pin its parameters down, not to test its shape; the extrapolation
  term of prediction intervals and one run's scatter, which more small runs do not remove, are not in the width;
- parameters the runs do not identify are held by the fit and would have no spread in the bootstrap, so here they
  are spread: an exponent uniformly over [0.05, 1], a floor E log-uniformly from 1 % to 100 % of the best run's
  value; each member is refitted on its own resample with its draw held and kept when that fit stays inside the
  95 % profile-likelihood region (chi-square on the log residuals). Runs that would identify them then show the
  members' disagreement and rank first;
- cost is training FLOPs; a candidate is one run (a configuration and seed), suggested at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws.allocate import CostModel
from gaitforecast.laws.belief import fit_for_design, forecast_ensemble
from gaitforecast.laws.bootstrap import BootstrapResult
from gaitforecast.laws.candidates import Candidates, spread_runs
from gaitforecast.laws.data import prepare
from gaitforecast.laws.fit import FittedLaw
from gaitforecast.laws.threads import single_blas_thread

ANCHORS = 8  # plans that start from one of the runs removing the most variance outright (knapsack guard)
WINSOR = 0.01  # members beyond the 1 % / 99 % quantiles of a quantity are clipped there for the covariances


@dataclass(frozen=True)
class Suggestion:
    """One suggested run: where it is, what it costs, and the forecast's expected width once it (and every
    earlier suggestion of the batch) is trained."""

    index: int  # into the candidates
    label: str
    params: float
    samples: float
    flops: float
    expected_width: float
    variance_removed: float  # share of the target's variance (left by earlier picks) this run is expected to remove
    disagreement: float  # 95 % spread of the ensemble's predictions at this run, relative (0.1 = 10 %)
    correlation: float  # of those predictions with the target quantity, across members
    why: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Design:
    """A ranked batch of runs for one target: the forecast's width now and after each suggestion."""

    objective: str
    metric: str
    law: str
    target_budget: float
    current_width: float | None  # None when no law could be fitted yet (the suggestions spread the design)
    interval: list[float] | None
    predicted: float | None
    width_units: str
    suggestions: tuple[Suggestion, ...]
    budget: float
    n_candidates: int
    n_affordable: int
    members: int = 0
    noise_sd: float | None = None
    spread: dict[str, list[float]] = field(default_factory=dict)  # held parameters spread over these ranges
    notes: tuple[str, ...] = ()
    plan_runs: int = 0  # the whole plan the suggestions start (more than them when planned to the budget)
    plan_flops: float = 0.0
    plan_width: float | None = None  # the width the whole plan is expected to reach
    boot: BootstrapResult | None = field(default=None, repr=False, compare=False)  # the fit it was made on

    @property
    def spent(self) -> float:
        return float(sum(s.flops for s in self.suggestions))

    @property
    def expected_width(self) -> float | None:
        return self.suggestions[-1].expected_width if self.suggestions else self.current_width

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("suggestions", "boot")}
        out.update(suggestions=[s.to_dict() for s in self.suggestions], spent=self.spent, notes=list(self.notes),
                   expected_width=self.expected_width)
        return out


def _winsorised(x: np.ndarray) -> np.ndarray:
    lo, hi = np.quantile(x, [WINSOR, 1 - WINSOR], axis=0)
    return np.clip(x, lo, hi)


def condition(anomalies: np.ndarray, column: int, noise_var: float) -> np.ndarray:
    """The ensemble's anomalies [M, K] after observing quantity ``column`` with noise variance ``noise_var``
    (serial ensemble square-root filter, Whitaker & Hamill 2002): the covariance becomes exactly the Kalman
    posterior P - P[:, c] P[c, :] / (P[c, c] + noise_var), and every member keeps its place in the spread."""
    x = anomalies
    m = len(x)
    col = x[:, column]
    p_cc = float(col @ col) / (m - 1)
    if p_cc <= 0:
        return x
    gain = (x.T @ col) / (m - 1) / (p_cc + noise_var)
    shrink = 1.0 / (1.0 + np.sqrt(noise_var / (p_cc + noise_var)))
    return x - shrink * np.outer(col, gain)


def _where(law: FittedLaw, params: float, samples: float) -> str:
    """Where a candidate sits relative to the fitted runs, in words."""
    parts = []
    for axis, value, noun in (("samples", samples, "samples"), ("params", params, "parameters")):
        if axis not in law.data.logx:
            continue
        lo, hi = np.exp(law.data.logx[axis].min()), np.exp(law.data.logx[axis].max())
        if value > hi * 1.01:
            parts.append(f"more {noun} than any run (x{value / hi:.2g})")
        elif value < lo / 1.01:
            parts.append(f"fewer {noun} than any run (x{value / lo:.2g})")
    return "; ".join(parts) or "inside the runs' range"


def _removal(x: np.ndarray, noise_var: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(var g, cov(g, h_c), var h_c, variance of g each candidate's run would remove) from anomalies [M, 1 + C]."""
    m = len(x)
    var_g = float(x[:, 0] @ x[:, 0]) / (m - 1)
    cov = (x[:, 0] @ x[:, 1:]) / (m - 1)
    var_c = np.sum(x[:, 1:] ** 2, axis=0) / (m - 1)
    return var_g, cov, var_c, cov ** 2 / (var_c + noise_var)


def _greedy(x: np.ndarray, flops: np.ndarray, allowed: np.ndarray, budget: float, horizon: int | None,
            noise_var: float, first: int | None = None) -> tuple[list[int], float]:
    """A plan: runs picked one by one, most variance removed per FLOP first (after ``first``, when given), each
    conditioning the ensemble, until ``horizon`` runs or nothing left fits in ``budget``; and the variance of g
    it leaves."""
    taken, picks, left = ~allowed, [], float(budget)
    while horizon is None or len(picks) < horizon:
        free = ~taken & (flops <= left * (1 + 1e-12))
        if not free.any():
            break
        if first is not None and not picks:
            c = first
        else:
            removed = _removal(x, noise_var)[3]
            score = np.where(free, removed / flops, -np.inf)
            tied = np.flatnonzero(score >= float(score.max()) * (1 - 1e-9))
            c = int(tied[np.argmin(flops[tied])])  # the cheapest of equally good runs
        x = condition(x, c + 1, noise_var)
        picks.append(c)
        taken[c] = True
        left -= float(flops[c])
    return picks, float(x[:, 0] @ x[:, 0])


@single_blas_thread
def suggest(boot: BootstrapResult, candidates: Candidates, target_budget: float, cost: CostModel,
            budget: float = np.inf, n: int = 5, objective: str = "metric", noise_sd: float | None = None,
            seed: int = 0, horizon: int | None = -1) -> Design:
    """The next ``n`` runs among ``candidates`` for narrowing the forecast at ``target_budget``: the first runs of
    the best plan within ``budget`` FLOPs, planned greedily by variance removed per FLOP. ``horizon`` is how many
    runs the plan may hold: ``n`` (the default, -1), or None for as many as the budget pays for (the adaptive
    sweep: the batch it trains now is the start of a plan for its whole remaining budget). With a finite budget
    the plans that start from one of the ANCHORS runs removing most variance outright are tried too, and the one
    leaving the least variance wins (a knapsack guard: many cheap runs can be worth less than one large run).
    See the module docstring for what is optimised and its assumptions."""
    law = boot.law
    if not budget > 0:
        raise GaitforecastError(f"budget must be a positive number of FLOPs, got {budget}")
    if n < 1:
        raise GaitforecastError(f"ask for at least one run, got {n}")
    if not len(candidates):
        raise GaitforecastError("no candidate runs left: every run the grid allows is in the store")
    horizon = n if horizon == -1 else horizon
    fc = forecast_ensemble(boot, target_budget, cost, objective, seed)
    h = law.form.log_predict(fc.thetas, {k: candidates.logx()[k] for k in law.form.inputs})[0]
    ok = np.isfinite(h).all(axis=1)
    if ok.sum() < 20:
        raise GaitforecastError(f"only {int(ok.sum())} ensemble members give finite predictions at the candidates")
    g, h = fc.draws[ok], h[ok]
    data = _winsorised(np.column_stack([g, h]))
    x = data - data.mean(axis=0)
    var0 = float(x[:, 0] @ x[:, 0])

    def expected(anomalies: np.ndarray) -> float:  # the width scaled by the SD the Kalman update leaves
        return fc.width * float(np.sqrt(max(float(anomalies[:, 0] @ anomalies[:, 0]), 0.0) / max(var0, 1e-300)))

    m = len(x)
    s = max(float(law.residual_sd), 1e-3) if noise_sd is None else float(noise_sd)
    affordable = candidates.flops <= budget
    if not affordable.any():
        raise GaitforecastError(f"no candidate run fits a budget of {budget:.3g} FLOPs (the cheapest costs "
                                f"{float(candidates.flops.min()):.3g}); raise --budget")
    plans = [_greedy(x, candidates.flops, affordable, budget, horizon, s * s)]
    if np.isfinite(budget):
        outright = np.where(affordable, _removal(x, s * s)[3], -np.inf)
        for c in np.argsort(-outright)[:ANCHORS]:
            if affordable[c] and c != plans[0][0][0]:
                plans.append(_greedy(x, candidates.flops, affordable, budget, horizon, s * s, first=int(c)))
    plan, least = plans[0]
    for other, var in plans[1:]:  # another plan only when it is better beyond rounding (same runs, other order)
        if var < least * (1 - 1e-6):
            plan, least = other, var
    if plan is not plans[0][0]:  # the plan's runs, most variance removed per FLOP first: its large run waits until
        in_plan = np.zeros(len(candidates), bool)  # the cheap ones it starts with have been refitted
        in_plan[plan] = True
        plan = _greedy(x, candidates.flops, in_plan, np.inf, None, s * s)[0]
    spread_h = np.diff(np.percentile(h, [2.5, 97.5], axis=0), axis=0)[0]
    picks = []
    for c in plan[:n]:
        var_g, cov, var_c, removed = _removal(x, s * s)
        x = condition(x, c + 1, s * s)
        after = expected(x)
        corr = float(cov[c] / np.sqrt(max(var_g * var_c[c], 1e-300)))
        share = float(removed[c] / var_g) if var_g > 0 else 0.0
        rel = float(np.expm1(spread_h[c]))
        why = (f"{_where(law, candidates.params[c], candidates.samples[c])}; the fitted laws disagree by {rel:.1%} "
               f"here, correlation {corr:+.2f} with the forecast: removes {share:.0%} of its variance")
        picks.append(Suggestion(index=int(c), label=candidates.labels[c], params=float(candidates.params[c]),
                                samples=float(candidates.samples[c]), flops=float(candidates.flops[c]),
                                expected_width=after, variance_removed=share, disagreement=rel, correlation=corr,
                                why=why))
    for c in plan[n:]:  # the rest of the plan: what the width is expected to reach on this budget
        x = condition(x, c + 1, s * s)
    return Design(objective=objective, metric=law.metric, law=law.law, target_budget=float(target_budget),
                  current_width=fc.width, interval=fc.interval, predicted=fc.predicted, width_units=fc.width_units,
                  suggestions=tuple(picks), budget=float(budget), n_candidates=len(candidates),
                  n_affordable=int(affordable.sum()), members=m, noise_sd=s, spread=fc.spread, notes=fc.notes,
                  plan_runs=len(plan), plan_flops=float(candidates.flops[plan].sum()),
                  plan_width=expected(x), boot=boot)


def design_law(runs: pd.DataFrame | None, metric: str | None, candidates: Candidates, law: str = "default",
               kind: str | None = None) -> str:
    """The law a design fits: ``law`` if named; else chinchilla when the runs (if any) and candidates together
    vary in both parameters and samples (runs that identify only one axis are what a design should repair), else
    power-compute."""
    if law not in ("default", "auto", None):
        return law
    logx = candidates.logx()
    axes = {k: logx[k] for k in ("params", "samples")}
    if runs is not None and len(runs):
        data = prepare(runs, metric, (), kind=kind)
        if not all(k in data.logx for k in axes):
            return "power-compute"
        axes = {k: np.concatenate([v, data.logx[k]]) for k, v in axes.items()}
    return "chinchilla" if all(np.ptp(v) > 0 for v in axes.values()) else "power-compute"


def design_fit(runs: pd.DataFrame, metric: str | None, candidates: Candidates, law: str = "default",
               n_resamples: int = 200, seed: int = 0, kind: str | None = None) -> tuple[BootstrapResult, list[str]]:
    """The bootstrapped law a design ranks with (:func:`design_law`) and notes. When the law is the default
    choice and the runs cannot carry it (too few configurations, a bootstrap that does not converge),
    power-compute is tried next (it ranks by compute alone); a GaitforecastError when neither fits."""
    name = design_law(runs, metric, candidates, law, kind)
    tries = [name] + (["power-compute"] if law in ("default", "auto", None) and name != "power-compute" else [])
    errors: list[str] = []
    for form in tries:
        try:
            boot = fit_for_design(runs, metric, form, n_resamples, seed, kind)
        except GaitforecastError as exc:
            errors.append(f"{form}: {str(exc).rstrip('.')}")
            continue
        notes = ([f"the {name} law could not be fitted to these runs ({errors[0].split(': ', 1)[1]}); ranked with "
                  f"{form}, which sees compute only"] if errors else [])
        return boot, notes
    raise GaitforecastError("; ".join(errors))


def plan_next(runs: pd.DataFrame, metric: str | None, candidates: Candidates, target_budget: float,
              cost: CostModel, budget: float, n: int = 1, law: str = "default", n_resamples: int = 200,
              seed: int = 0, objective: str = "metric", kind: str | None = None, horizon: int | None = -1) -> Design:
    """Fit ``law`` to ``runs``, bootstrap it and :func:`suggest` the next ``n`` candidates. When the runs cannot
    carry the law yet (too few configurations, a bootstrap that does not converge), the suggestions are the runs
    that spread the design around the runs (:func:`spread_runs`) and ``current_width`` is None."""
    try:
        boot, notes = design_fit(runs, metric, candidates, law, n_resamples, seed, kind)
        design = suggest(boot, candidates, target_budget, cost, budget=budget, n=n, objective=objective, seed=seed,
                         horizon=horizon)
        return replace(design, notes=tuple(notes) + design.notes) if notes else design
    except GaitforecastError as exc:
        if "no candidate run fits" in str(exc):
            raise
        why_not = str(exc).rstrip(".")
    name = design_law(runs if len(runs) else None, metric, candidates, law, kind)
    existing = None
    if len(runs) and {"params", "samples"} <= set(runs.columns):
        existing = (runs["params"].to_numpy(float), runs["samples"].to_numpy(float))
    picks = spread_runs(candidates.params, candidates.samples, candidates.flops, n, existing=existing, budget=budget)
    if not picks:
        raise GaitforecastError(f"no candidate run fits a budget of {budget:.3g} FLOPs (the cheapest costs "
                                f"{float(candidates.flops.min()):.3g}); raise --budget")
    note = f"no law fits these runs yet ({why_not}): these runs spread the design over the grid"
    return Design(objective=objective, metric=str(metric), law=name, target_budget=float(target_budget),
                  current_width=None, interval=None, predicted=None, width_units=str(metric),
                  suggestions=tuple(Suggestion(index=i, label=candidates.labels[i], params=float(candidates.params[i]),
                                               samples=float(candidates.samples[i]), flops=float(candidates.flops[i]),
                                               expected_width=float("nan"), variance_removed=float("nan"),
                                               disagreement=float("nan"), correlation=float("nan"),
                                               why="spreads the design over log N x log D (no law fitted yet)")
                                    for i in picks),
                  budget=float(budget), n_candidates=len(candidates),
                  n_affordable=int((candidates.flops <= budget).sum()), notes=(note,))

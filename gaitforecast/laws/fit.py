"""Robust fitting of a law form: Huber loss on log residuals, multi-start search, a convergence check.

Configure a :class:`LawFitter`, call ``fit(runs, metric)``, get a :class:`FittedLaw` (a value: parameters,
status, the data it saw). The objective is the *sum* of Huber losses on log residuals (delta 1e-3 by default,
as Hoffmann et al. and Epoch AI). Known trap: that sum is ~1e-3 with gradients ~1e-5, under scipy's default
tolerances, so a naive L-BFGS-B stops early (fitting.md §2.6). Here every local search minimises the objective
divided by its starting value (so it is O(1)), with explicit tolerances, and the final gradient is checked
against the largest gradient the data could produce; a fit that fails the check says so in ``status``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.threads import single_blas_thread
from gaitforecast.laws.data import LawData, prepare
from gaitforecast.laws.forms import LawForm, get_form

GRAD_TOL = 1e-6  # converged when every gradient component is below this share of its largest possible size
# Problems (starts, resamples) are evaluated together in batches whose [batch, runs, parameters] Jacobian stays
# under this size: memory then grows with the runs, not with runs x problems (100k runs x 2,304 starts x 5
# parameters would be 9 GB at once).
BATCH_BYTES = 32 * 2**20


def batch_size(n_runs: int, n_theta: int) -> int:
    """How many problems to evaluate at once so that one [batch, runs, parameters] float array fits BATCH_BYTES."""
    return max(1, BATCH_BYTES // (8 * max(n_runs, 1) * max(n_theta, 1)))


def huber_sum(r: np.ndarray, delta: float, weights: np.ndarray | float = 1.0) -> np.ndarray:
    """Sum over the last axis of weighted Huber losses (quadratic within +-delta, linear beyond)."""
    a = np.abs(r)
    per = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return np.sum(weights * per, axis=-1)


def objective(form: LawForm, theta: np.ndarray, logx: dict, logy: np.ndarray, delta: float,
              weights: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Huber sum, gradient, relative gradient) for theta [..., p]; the relative gradient is the convergence test."""
    pred, jac = form.log_predict(theta, logx)
    r = pred - logy
    psi = np.clip(r, -delta, delta) * weights
    grad = np.einsum("...n,...np->...p", psi, jac)
    scale = np.einsum("...n,...np->...p", delta * (weights + 0.0 * r), np.abs(jac)) + 1e-300
    return huber_sum(r, delta, weights), grad, np.abs(grad) / scale


def _projected(grel: np.ndarray, grad: np.ndarray, theta: np.ndarray, lo, hi) -> np.ndarray:
    """Relative gradient with the components that push against an active bound zeroed (KKT at a bound)."""
    tol = 1e-9 * np.maximum(1.0, np.abs(theta))
    blocked = ((theta <= lo + tol) & (grad > 0)) | ((theta >= hi - tol) & (grad < 0))
    return np.where(blocked, 0.0, grel)


def refine_batch(form: LawForm, thetas: np.ndarray, logx: dict, logy: np.ndarray, delta: float,
                 weights: np.ndarray | float = 1.0, bounds: list | None = None, max_iter: int = 300,
                 on_converged: Callable[[int], None] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise many problems at once (starts or bootstrap resamples): damped Gauss-Newton on the Huber IRLS
    majoriser, vectorised over the batch (in batches of :func:`batch_size`; the problems are independent).
    Returns (thetas [R, p], objective [R], relative gradient max [R]). ``on_converged(n)`` hears after each
    sweep how many problems have converged (for progress)."""
    theta = np.array(thetas, dtype=float)
    n_batch, p = theta.shape
    weights = np.broadcast_to(np.asarray(weights, dtype=float), (n_batch, logy.shape[-1]))
    step = batch_size(logy.shape[-1], p)
    if n_batch > step:
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(0, n_batch, step):
            done = sum(int((part[2] <= GRAD_TOL).sum()) for part in parts)
            hear = None if on_converged is None else (lambda n, done=done: on_converged(done + n))
            parts.append(refine_batch(form, theta[i:i + step], logx, logy, delta, weights[i:i + step], bounds,
                                      max_iter, hear))
        thetas_out, f_out, grel_out = (np.concatenate(column) for column in zip(*parts))
        return thetas_out, f_out, grel_out
    lo, hi = (np.array(b, dtype=float) for b in zip(*bounds)) if bounds else (-np.inf, np.inf)
    fixed = np.broadcast_to(np.asarray(lo == hi), (p,)) if bounds else np.zeros(p, bool)  # held parameters
    lam = np.full(n_batch, 1e-3)
    f, g, grel = objective(form, theta, logx, logy, delta, weights)
    grel = _projected(grel, g, theta, lo, hi)
    active = grel.max(axis=1) > GRAD_TOL
    eye = np.eye(p)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        th, w = theta[idx], weights[idx]
        pred, jac = form.log_predict(th, logx)
        r = pred - logy
        wt = w * np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
        if fixed.any():
            jac = jac * ~fixed
        hess = np.einsum("rn,rnp,rnq->rpq", wt, jac, jac) + np.diag(fixed.astype(float))
        damp = lam[idx, None, None] * (hess * eye + 1e-12 * eye)
        step = np.linalg.solve(hess + damp, -(g[idx] * ~fixed)[..., None])[..., 0]
        trial = np.clip(th + step, lo, hi)
        f_new, g_new, grel_new = objective(form, trial, logx, logy, delta, w)
        grel_new = _projected(grel_new, g_new, trial, lo, hi)
        better = f_new <= f[idx]
        ok = idx[better]
        theta[ok], f[ok], g[ok], grel[ok] = trial[better], f_new[better], g_new[better], grel_new[better]
        lam[ok] = np.maximum(lam[ok] / 3.0, 1e-9)
        lam[idx[~better]] *= 4.0
        stalled = lam > 1e8  # no descent even with tiny steps: leave it to the polish
        unconverged = grel.max(axis=1) > GRAD_TOL
        active = unconverged & ~stalled
        if on_converged is not None:
            on_converged(n_batch - int(unconverged.sum()))
    return theta, f, grel.max(axis=1)


def polish(form: LawForm, theta0: np.ndarray, logx: dict, logy: np.ndarray, delta: float,
           weights: np.ndarray | float = 1.0, bounds: list | None = None) -> tuple[np.ndarray, float, float]:
    """One bounded L-BFGS-B search on the objective rescaled to 1 at the start, tight tolerances."""
    f0 = float(objective(form, theta0, logx, logy, delta, weights)[0])
    scale = 1.0 / max(f0, 1e-300)

    def fun(th):
        f, g, _ = objective(form, th, logx, logy, delta, weights)
        return float(f) * scale, g * scale

    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 5000, "maxfun": 20000, "ftol": 1e-15, "gtol": 1e-12})
    f, g, grel = objective(form, res.x, logx, logy, delta, weights)
    if bounds:
        lo, hi = (np.array(b, dtype=float) for b in zip(*bounds))
        grel = _projected(grel, g, res.x, lo, hi)
    return res.x, float(f), float(grel.max())


@dataclass(frozen=True)
class FittedLaw:
    """A fitted law: the form, its parameters, how well the search converged, and the data it was fitted on.

    ``params`` are in the fitted target's units (for accuracy metrics -ln accuracy or the error rate, as the
    form asks; ``fitted_as`` says).
    ``predict`` answers in the metric's own units; ``predict_fitted`` in the fitted target's units.
    """

    form: LawForm
    metric: str
    theta: np.ndarray
    params: dict[str, float]
    n_runs: int
    objective: float
    grad_rel: float
    converged: bool
    status: str
    at_bound: tuple[str, ...]
    huber_delta: float
    n_starts: int
    starts_agreeing: int
    residual_sd: float
    data: LawData = field(repr=False, compare=False)
    held: dict[int, str] = field(default_factory=dict)  # internal parameter index -> why it is held fixed
    calibrate: bool = False  # learn the extrapolation error from rollouts when a prediction first needs it
    # (laws.bootstrap.extrapolation_of keeps it here)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def fixed(self) -> dict[str, float]:
        """User-facing parameters held fixed because the runs do not identify them: {name: value}."""
        names = self.form.theta_names()
        return {self.form.param_of(names[i]): self.params[self.form.param_of(names[i])] for i in self.held}

    @property
    def fixed_why(self) -> dict[str, str]:
        names = self.form.theta_names()
        return {self.form.param_of(names[i]): why for i, why in self.held.items()}

    def bounds(self) -> list[tuple[float, float]]:
        """The form's bounds for these data, with each held parameter pinned at its value (lo == hi)."""
        return [(float(self.theta[i]),) * 2 if i in self.held else b
                for i, b in enumerate(self.form.bounds(self.data.logy))]

    @property
    def law(self) -> str:
        return self.form.name

    @property
    def fitted_as(self) -> str:
        return self.data.fitted_as

    def _logx(self, params=None, samples=None, flops=None) -> dict[str, np.ndarray]:
        given = {"params": params, "samples": samples, "flops": flops}
        out = {}
        for axis in self.form.inputs:
            value = given[axis]
            if value is None:
                raise GaitforecastError(f"law {self.law!r} needs {axis} to predict; pass it")
            value = np.asarray(value, dtype=float)
            if not (np.isfinite(value).all() and (value > 0).all()):
                raise GaitforecastError(f"{axis} must be positive finite numbers, got {value}")
            out[axis] = np.log(value)
        return out

    def predict_fitted(self, params=None, samples=None, flops=None, theta: np.ndarray | None = None) -> np.ndarray:
        """The law's value in the fitted target's units at the given inputs; ``theta`` may be a batch."""
        logx = self._logx(params, samples, flops)
        shape = np.broadcast_shapes(*(v.shape for v in logx.values()))
        logx = {k: np.broadcast_to(v, shape).ravel() for k, v in logx.items()}
        pred, _ = self.form.log_predict(self.theta if theta is None else theta, logx)
        return np.exp(pred).reshape(np.shape(pred)[:-1] + shape)

    def predict(self, params=None, samples=None, flops=None) -> np.ndarray:
        """The metric's predicted value in its own units (accuracy for accuracy metrics)."""
        return self.data.to_metric_units(self.predict_fitted(params, samples, flops))

    def to_dict(self) -> dict:
        """JSON-ready summary (the keys of `gaitforecast fit --json` minus the intervals)."""
        return {
            "law": self.law, "metric": self.metric, "fitted_as": self.fitted_as, "n_runs": self.n_runs,
            "params": dict(self.params), "converged": self.converged, "status": self.status,
            "objective": self.objective, "grad_rel": self.grad_rel, "at_bound": list(self.at_bound),
            "huber_delta": self.huber_delta, "n_starts": self.n_starts, "starts_agreeing": self.starts_agreeing,
            "residual_sd_log": self.residual_sd, "description": self.form.description,
            "fixed": self.fixed, "fixed_why": self.fixed_why,
        }


@dataclass(frozen=True)
class LawFitter:
    """Configure a fit (form, Huber delta, search effort), then ``fit(runs, metric)``.

    Use it for any law in :data:`gaitforecast.laws.forms.FORM_NAMES`. ``n_polish`` starts of the screened grid
    are refined; more makes the search safer and slower.
    """

    law: str = "chinchilla"
    huber_delta: float = 1e-3
    n_refine: int = 24
    n_polish: int = 3
    chance_error: float | None = None

    def fit(self, runs: pd.DataFrame | LawData, metric: str | None = None) -> FittedLaw:
        form = get_form(self.law, self.chance_error)
        if not (np.isfinite(self.huber_delta) and self.huber_delta > 0):
            raise GaitforecastError(f"huber delta must be positive, got {self.huber_delta}")
        data = runs if isinstance(runs, LawData) else prepare(runs, metric, form.inputs, form.accuracy_target)
        return fit_data(form, data, self.huber_delta, self.n_refine, self.n_polish)


def fit_law(runs: pd.DataFrame | LawData, metric: str | None = None, law: str = "chinchilla",
            huber_delta: float = 1e-3) -> FittedLaw:
    """Shortcut for ``LawFitter(law, huber_delta).fit(runs, metric)``."""
    return LawFitter(law=law, huber_delta=huber_delta).fit(runs, metric)


@single_blas_thread
def fit_data(form: LawForm, data: LawData, delta: float = 1e-3, n_refine: int = 24, n_polish: int = 3,
             calibrate: bool = True) -> FittedLaw:
    """Fit ``form`` to prepared data: screen the start grid, refine the best starts together, polish a few.
    An accuracy is fitted as the form's ``accuracy_target`` (the data are converted when they hold another).
    With ``calibrate``, the law also learns how its error grows when it extrapolates, from rollouts on these
    runs (laws.extrapolation), which the bootstrap's prediction intervals then include."""
    data = data.retarget(form.accuracy_target)
    progress.step(f"fitting {form.name} to {data.n} runs")
    missing = [a for a in form.inputs if a not in data.logx]
    if missing:
        raise GaitforecastError(f"law {form.name!r} needs {', '.join(missing)}, which the runs lack")
    n_configs = len(np.unique(data.groups))
    if n_configs < form.min_runs:
        raise GaitforecastError(
            f"law {form.name!r} has {form.n_theta} parameters and needs at least {form.min_runs} distinct runs; "
            f"got {n_configs}. Add runs or pick a law with fewer parameters (e.g. power-compute)"
        )
    logx = {k: data.logx[k] for k in form.inputs}
    logy = data.logy
    bounds = form.bounds(logy)
    lo, hi = (np.array(b) for b in zip(*bounds))
    grid = np.clip(form.start_grid(logx, logy), lo, hi)
    step = batch_size(data.n, form.n_theta)
    screened = np.concatenate([np.atleast_1d(objective(form, grid[i:i + step], logx, logy, delta)[0])
                               for i in range(0, len(grid), step)])
    starts = grid[np.argsort(screened)[: n_refine]]
    refined, f_ref, _ = refine_batch(form, starts, logx, logy, delta, bounds=bounds, max_iter=200)
    order = np.argsort(f_ref)
    results = [polish(form, refined[i], logx, logy, delta, bounds=bounds) for i in order[:n_polish]]
    best = min(range(len(results)), key=lambda i: results[i][1])
    theta, f_best, grad_rel = results[best]
    agreeing = sum(1 for _, f, _ in results if f <= f_best * (1 + 1e-6) + 1e-300)
    theta, f_best, grad_rel, held = _identify_and_refit(form, data, theta, f_best, grad_rel, delta,
                                                        profile=calibrate)
    law = _make_law(form, data, theta, f_best, grad_rel, delta, len(grid), agreeing, held)
    return replace(law, calibrate=calibrate) if calibrate else law


def _identify_and_refit(form: LawForm, data: LawData, theta: np.ndarray, f_best: float, grad_rel: float,
                        delta: float, profile: bool = True) -> tuple[np.ndarray, float, float, dict[int, str]]:
    """Hold the parameters the runs do not identify at their values and refit the rest with lmfit: first those
    on a bound, then (with ``profile``) exponents whose profile is flat, profiled on the refit with the first
    held. The lmfit point fit is kept when it is no worse. Without ``profile`` only parameters on a bound are
    held (the calibration rollouts' quick fits)."""
    logx = {k: data.logx[k] for k in form.inputs}
    held = unidentified(form, data, theta, delta)  # every parameter on a bound, in one pass
    try:
        if held:
            theta = lmfit_refit(form, data, theta, delta, set(held))
        flat = flat_exponents(form, data, theta, delta, set(held)) if profile else {}
        held.update(flat)
        # the final lmfit point fit, unless the refit above already is it (nothing newly held)
        refit = lmfit_refit(form, data, theta, delta, set(held)) if flat or not held else theta
    except (ValueError, FloatingPointError):  # lmfit refused the start: keep the fit so far
        refit = theta
    bounds = [(float(theta[i]),) * 2 if i in held else b for i, b in enumerate(form.bounds(data.logy))]
    lo, hi = (np.array(b, dtype=float) for b in zip(*bounds))
    f, g, grel = objective(form, refit, logx, data.logy, delta)
    if float(f) <= f_best * (1 + 1e-9) + 1e-300:
        theta, f_best, grad_rel = refit, float(f), float(_projected(grel, g, refit, lo, hi).max())
    else:
        f, g, grel = objective(form, theta, logx, data.logy, delta)
        grad_rel = float(_projected(grel, g, theta, lo, hi).max())
    return theta, f_best, grad_rel, held


def _make_law(form, data, theta, f_best, grad_rel, delta, n_starts, agreeing, held=None) -> FittedLaw:
    bounds = form.bounds(data.logy)
    names = form.theta_names()
    held = dict(held or {})
    at_bound = tuple(
        names[i] for i, (lo, hi) in enumerate(bounds)
        if min(abs(theta[i] - lo), abs(theta[i] - hi)) <= 1e-6 * max(1.0, abs(theta[i]))
    )
    converged = grad_rel <= 1e-4  # projected gradient: a parameter resting on its bound may still converge
    fixed_note = ", ".join(f"{form.param_of(names[i])} held at {form.params(theta)[form.param_of(names[i])]:.3g}"
                           for i in held)
    if not converged:
        status = f"not converged: relative gradient {grad_rel:.1e} after polishing; treat the parameters as rough"
    elif held:
        status = f"converged with {fixed_note} (not identified by these runs; the rest fitted free)"
    elif at_bound:
        status = f"converged at a bound ({', '.join(at_bound)}): that parameter is not identified by these runs"
    else:
        status = "converged"
    pred, _ = form.log_predict(theta, {k: data.logx[k] for k in form.inputs})
    resid = data.logy - pred
    resid_sd = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    params = {k: float(v) for k, v in form.params(theta).items()}
    return FittedLaw(
        form=form, metric=data.metric, theta=np.asarray(theta, dtype=float), params=params, n_runs=data.n,
        objective=float(f_best), grad_rel=float(grad_rel), converged=bool(converged), status=status,
        at_bound=at_bound, huber_delta=delta, n_starts=n_starts, starts_agreeing=agreeing,
        residual_sd=resid_sd, data=data, held=held,
    )



def unidentified(form: LawForm, data: LawData, theta: np.ndarray, delta: float,
                 held: set[int] = frozenset()) -> dict[int, str]:
    """Internal parameters the runs do not identify at the fit ``theta``, with the reason: those resting on a
    bound of the search (the data push them there and no further). ``held`` parameters are left out.

    The Hessian's spectrum does not make this call in the log-parametrisation: amplitude and exponent of one
    term are strongly correlated even where both are identified (smallest scaled eigenvalue 1.3e-5 of the
    largest on Chinchilla's table, 1.3e-4 on a table with no N dependence at all), so weakly identified
    exponents are judged after the bootstrap instead (:func:`gaitforecast.laws.diagnostics.interval_at_bounds`,
    held by :func:`fit_identified`)."""
    bounds = form.bounds(data.logy)
    names = form.theta_names()
    found: dict[int, str] = {}
    for i, (lo, hi) in enumerate(bounds):
        if i in held:
            continue
        tol = 1e-6 * max(1.0, abs(theta[i]))
        if abs(theta[i] - lo) <= tol or abs(theta[i] - hi) <= tol:
            side = "lower" if abs(theta[i] - lo) <= tol else "upper"
            found[i] = f"{names[i]} rests on its {side} bound: these runs do not identify it"
    return found


def lmfit_refit(form: LawForm, data: LawData, theta0: np.ndarray, delta: float,
                held: set[int] = frozenset()) -> np.ndarray:
    """The point fit from ``theta0`` with lmfit: one Parameter per internal parameter (the form's bounds;
    ``held`` ones ``vary=False``), Huber loss on log residuals (scipy least_squares with f_scale = delta, the
    same objective as :func:`huber_sum`), tight tolerances."""
    import lmfit  # ~0.3 s of import: only where a point fit is made

    names = form.theta_names()
    bounds = form.bounds(data.logy)
    logx = {k: data.logx[k] for k in form.inputs}
    params = lmfit.Parameters()
    for i, name in enumerate(names):
        lo, hi = bounds[i]
        params.add(name, value=float(np.clip(theta0[i], lo, hi)), min=lo, max=hi, vary=i not in held)

    def residual(p: lmfit.Parameters) -> np.ndarray:
        theta = np.array([p[n].value for n in names])
        return form.log_predict(theta, logx)[0] - data.logy

    def jacobian(p: lmfit.Parameters) -> np.ndarray:
        theta = np.array([p[n].value for n in names])
        jac = form.log_predict(theta, logx)[1]
        return jac[:, [i for i in range(len(names)) if i not in held]]

    with warnings.catch_warnings():  # lmfit's standard errors of a singular Jacobian (unused here)
        warnings.simplefilter("ignore", RuntimeWarning)
        out = lmfit.minimize(residual, params, method="least_squares", loss="huber", f_scale=delta, jac=jacobian,
                             xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000, calc_covar=False)
    return np.array([out.params[n].value for n in names])


PROFILE_CHI2 = 3.84  # 95 % profile-likelihood threshold on 2 x log-likelihood ratio (chi-square, 1 dof)
PROFILE_WIDTH = 0.5  # an exponent whose 95 % profile interval is wider than this is not identified


def flat_exponents(form: LawForm, data: LawData, theta: np.ndarray, delta: float,
                   held: set[int] = frozenset()) -> dict[int, str]:
    """Exponents whose profile likelihood is flat: moved to a bound of the search, or +-PROFILE_WIDTH/2 either
    side, with the rest refitted, the runs' fit stays within the 95 % profile threshold (Gaussian likelihood of
    the log residuals of the runs within 3 robust SD of the point fit, n ln(RSS / RSS_min) < 3.84). Returns
    {index: why}; the caller holds them at their value."""
    names = form.theta_names()
    bounds = form.bounds(data.logy)
    logx = {k: data.logx[k] for k in form.inputs}

    resid = data.logy - form.log_predict(theta, logx)[0]
    mad = 1.4826 * np.median(np.abs(resid - np.median(resid)))
    inlier = np.abs(resid - np.median(resid)) <= 3.0 * mad + 1e-12  # runs the Huber fit treats as outliers
    n_in = int(inlier.sum())                                          # would swamp a squared-error profile

    def rss(th: np.ndarray) -> float:
        return float(np.sum(((form.log_predict(th, logx)[0] - data.logy)[inlier]) ** 2))

    base = max(rss(theta), 1e-300)

    def within(value: float, i: int) -> bool:
        start = np.array(theta, dtype=float)
        start[i] = value
        refit = lmfit_refit(form, data, start, delta, set(held) | {i})
        return n_in * np.log(max(rss(refit), 1e-300) / base) < PROFILE_CHI2

    found: dict[int, str] = {}
    for name in form.exponent_names:
        i = names.index(name)
        if i in held:
            continue
        lo, hi = bounds[i]
        for side, edge in (("lower", lo), ("upper", hi)):
            if within(edge, i):
                found[i] = (f"{name}'s 95 % profile interval reaches its {side} bound {edge:g} (the fit is as good "
                            f"there): these runs do not identify it")
                break
        else:
            if within(max(lo, theta[i] - PROFILE_WIDTH / 2), i) and within(min(hi, theta[i] + PROFILE_WIDTH / 2), i):
                found[i] = (f"{name}'s 95 % profile interval is wider than {PROFILE_WIDTH}: these runs do not "
                            "identify it")
    return found

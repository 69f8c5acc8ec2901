"""Run-level bootstrap: how sure a fitted law is about its parameters and its predictions.

Resample the *configurations* with replacement (the seeds of one configuration travel together), refit every
resample warm-started from the point fit, and read percentile intervals off the refits. All resamples are fitted
at once as one weighted problem each (vectorised Gauss-Newton on the Huber objective; stragglers are polished
one by one), which makes 1000 resamples of the 240 Chinchilla runs take a couple of seconds.

Confidence intervals (``ci``) say where the law's mean is; prediction intervals (``pi``) add the scatter of a
single new run, drawn from the point fit's residuals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.threads import single_blas_thread
from gaitforecast.laws.extrapolation import Extrapolation, calibrate
from gaitforecast.laws.fit import GRAD_TOL, FittedLaw, fit_data, polish, refine_batch


@dataclass(frozen=True)
class BootstrapResult:
    """Refits of a law on resampled runs. ``thetas`` [R, p] holds every refit (internal parametrisation);
    ``n_failed`` of them did not pass the convergence test and are kept at the best point found."""

    law: FittedLaw
    thetas: np.ndarray = field(repr=False)
    n_resamples: int
    n_failed: int
    seed: int
    level: float = 0.95

    def _quantiles(self, values: np.ndarray, level: float | None) -> tuple[np.ndarray, np.ndarray]:
        level = self.level if level is None else level
        if not 0.0 < level < 1.0:
            raise GaitforecastError(f"interval level must be in (0, 1), got {level}")
        tail = 50.0 * (1.0 - level)
        lo, hi = np.percentile(values, [tail, 100.0 - tail], axis=0)
        return lo, hi

    def param_samples(self) -> dict[str, np.ndarray]:
        """Bootstrap draws of each user-facing parameter."""
        return {k: np.asarray(v) for k, v in self.law.form.params(self.thetas).items()}

    def param_ci(self, level: float | None = None) -> dict[str, list[float]]:
        """Percentile interval [lo, hi] per parameter (95 % by default)."""
        out = {}
        for name, draws in self.param_samples().items():
            lo, hi = self._quantiles(draws, level)
            out[name] = [float(lo), float(hi)]
        return out

    def param_se(self) -> dict[str, float]:
        """Bootstrap standard error per parameter."""
        return {k: float(np.std(v, ddof=1)) for k, v in self.param_samples().items()}

    def predict(self, params=None, samples=None, flops=None, level: float | None = None,
                seed: int = 1) -> pd.DataFrame:
        """Point prediction with confidence and prediction intervals, in the metric's own units.

        Returns one row per input point: predicted, ci_lo, ci_hi, pi_lo, pi_hi. Use this for forecasts and for
        plotting bands (it is cheap: one vectorised evaluation per bootstrap draw).
        """
        law = self.law
        point = np.atleast_1d(law.predict_fitted(params, samples, flops)).ravel()
        draws = law.predict_fitted(params, samples, flops, theta=self.thetas).reshape(len(self.thetas), -1)
        rng = np.random.default_rng(seed)
        resid = _point_residuals(law)
        noisy = draws * np.exp(rng.choice(resid, size=draws.shape))
        extra = extrapolation_of(law)
        if extra is not None:  # beyond the runs: the error of extrapolating (learned on rollouts)
            logx = law._logx(params, samples, flops)
            shape = np.broadcast_shapes(*(v.shape for v in logx.values()))
            noisy = extra.widen(noisy, {k: np.broadcast_to(v, shape).ravel() for k, v in logx.items()},
                                law.form.inputs, rng)
        ci_lo, ci_hi = self._quantiles(draws, level)
        pi_lo, pi_hi = self._quantiles(noisy, level)
        to_metric = law.data.to_metric_units
        frame = {"predicted": to_metric(point)}
        for name, lo, hi in (("ci", ci_lo, ci_hi), ("pi", pi_lo, pi_hi)):
            a, b = to_metric(lo), to_metric(hi)
            frame[f"{name}_lo"], frame[f"{name}_hi"] = np.minimum(a, b), np.maximum(a, b)
        return pd.DataFrame(frame)

    def to_dict(self, level: float | None = None) -> dict:
        """The law's summary plus ``ci`` and ``se`` per parameter and the resampling details."""
        out = self.law.to_dict()
        out.update({
            "ci": self.param_ci(level), "se": self.param_se(), "ci_level": self.level if level is None else level,
            "n_resamples": self.n_resamples, "n_resamples_failed": self.n_failed, "bootstrap_seed": self.seed,
        })
        return out


def _point_residuals(law: FittedLaw) -> np.ndarray:
    """Log residuals (observed - fitted) of the point fit: the scatter of a single new run.

    In-sample residuals are smaller than a new run's deviation (the fit chased them), so they are scaled up
    by sqrt(n / (n - p)), the usual degrees-of-freedom correction.
    """
    logx = {k: law.data.logx[k] for k in law.form.inputs}
    pred, _ = law.form.log_predict(law.theta, logx)
    n, p = law.data.n, law.form.n_theta
    return (law.data.logy - pred) * np.sqrt(n / max(n - p, 1))


def resample_weights(groups: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Weights [R, n]: how many times each run appears in each resample, groups (seeds of a config) kept whole."""
    n_groups = int(groups.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_resamples)
    return counts[:, groups].astype(float)


@single_blas_thread
def bootstrap(law: FittedLaw, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> BootstrapResult:
    """Refit ``law`` on ``n_resamples`` run-level resamples (warm-started from the point fit).

    Use 1000 (the default) for intervals you report; a few hundred is enough for a quick look. A resample whose
    refit does not converge is polished again (also from the point fit) and kept at the best point found, counted
    in ``n_failed``: the hard resamples belong in the intervals.
    """
    if n_resamples < 20:
        raise GaitforecastError(f"need at least 20 bootstrap resamples for an interval, got {n_resamples}")
    form, data = law.form, law.data
    progress.step(f"bootstrapping {form.name} on {data.n} runs", total=n_resamples, unit="resamples")
    logx = {k: data.logx[k] for k in form.inputs}
    logy = data.logy
    bounds = law.bounds()  # parameters the runs do not identify stay held where the point fit holds them
    weights = resample_weights(data.groups, n_resamples, seed)
    thetas, _, grel = refine_batch(form, np.tile(law.theta, (n_resamples, 1)), logx, logy, law.huber_delta,
                                   weights, bounds=bounds, on_converged=progress.advance)
    good = grel <= GRAD_TOL * 10
    hard = np.flatnonzero(~good)
    progress.advance(n_resamples - len(hard))
    for k, i in enumerate(hard):
        # a hard resample: polish where the batch stopped and, failing that, from the point fit; keep the better
        tries = [polish(form, start, logx, logy, law.huber_delta, weights[i], bounds=bounds)
                 for start in (thetas[i], law.theta)]
        theta, _, g = min(tries, key=lambda t: t[1])
        thetas[i], good[i] = theta, g <= 1e-4
        progress.advance(n_resamples - len(hard) + k + 1)
    if good.sum() < max(20, n_resamples // 2):
        raise GaitforecastError(
            f"only {good.sum()} of {n_resamples} bootstrap refits converged; the law is poorly identified by "
            "these runs. Add runs spanning more compute or pick a simpler law"
        )
    # Refits that did not converge stay in the ensemble at the best point found: dropping them would narrow the
    # intervals toward the easy resamples. Their count is reported (n_failed) and warned about above 5 %.
    return BootstrapResult(law=law, thetas=thetas, n_resamples=n_resamples,
                           n_failed=int((~good).sum()), seed=seed, level=level)


def curve(result: BootstrapResult, axis: str | None = None, n_points: int = 60, extend: float = 10.0,
          fixed: dict | None = None, level: float | None = None) -> pd.DataFrame:
    """A law's prediction with bands along one axis, for plotting: columns <axis>, predicted, ci_*, pi_*.

    The grid runs log-uniformly over the fitted runs' range, extended ``extend`` times beyond the largest.
    Two-axis laws need the other axis in ``fixed`` (e.g. ``fixed={"params": 1e6}``); for the compute-optimal
    frontier use :func:`gaitforecast.laws.allocate.frontier`.
    """
    form, data = result.law.form, result.law.data
    axis = axis or form.inputs[0]
    if axis not in form.inputs:
        raise GaitforecastError(f"law {form.name!r} has no {axis!r} axis; pick one of {', '.join(form.inputs)}")
    lo, hi = np.exp(data.logx[axis].min()), np.exp(data.logx[axis].max()) * extend
    grid = np.geomspace(lo, hi, n_points)
    inputs = dict(fixed or {})
    missing = [a for a in form.inputs if a != axis and a not in inputs]
    if missing:
        raise GaitforecastError(f"fix {', '.join(missing)} to draw law {form.name!r} along {axis}")
    inputs[axis] = grid
    bands = result.predict(**inputs, level=level)
    bands.insert(0, axis, grid)
    return bands


def extrapolation_of(law: FittedLaw) -> Extrapolation | None:
    """How ``law``'s error grows beyond its runs (laws.extrapolation), learned from rollouts on first use and
    kept with the law; None without calibration or when no rollout can be fitted."""
    if not law.calibrate:
        return None
    if "extrapolation" not in law._cache:
        law._cache["extrapolation"] = calibrate(law.form, law.data, law.huber_delta, fit_data=fit_data,
                                                bootstrap=bootstrap)
    return law._cache["extrapolation"]

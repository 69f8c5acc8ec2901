"""How wrong is a law when it extrapolates? Calibrated on the runs' own rollouts (conformal).

The bootstrap prices parameter noise and the scatter of one run; a law that is slightly wrong in shape is
wrong by more the further it extrapolates, which neither term sees (on the Chinchilla table's rollout the
bootstrap's 95 % intervals covered 59-68 % of the larger runs). Here the fitted runs are rolled out on
themselves: fit below six compute cutoffs, bootstrap that fit (100 resamples), predict the larger runs, and ask
of each error e (log units of the fitted target) which extra SD per decade of extrapolation would have put it
inside a 95 % normal interval on top of the rollout's own scatter sigma and bootstrap spread s:

    need = sqrt(max(0, (e / 1.96)^2 - sigma^2 - s^2)) / d

with d the decades of scale (the sum of the law's log inputs: log compute, or log N + log D) beyond the rollout's
largest run. The 95th percentile of ``need`` (split-conformal on the rollouts) is ``kappa``: beyond the fitted
runs a prediction gets an extra N(0, (kappa d)^2) on the log scale. A law whose bootstrap already covers its
rollouts gets kappa 0 and unchanged intervals (measured on synthetic truths); inside the fitted runs' range
nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.data import LawData

CUTOFF_SHARES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # internal rollouts: fit below this share of the log-scale range
LEVEL, Z95 = 0.95, 1.959964
ROLLOUT_RESAMPLES = 100


@dataclass(frozen=True)
class Extrapolation:
    """The learned widening of prediction intervals beyond the fitted runs."""

    kappa: float  # extra SD (log units) of a prediction per decade beyond the data
    scale_max: float  # log scale (sum of the law's log inputs) of the largest fitted run
    n_pairs: int  # rollout predictions it was learned from
    n_rollouts: int

    def distance(self, logx: dict[str, np.ndarray], inputs: tuple[str, ...]) -> np.ndarray:
        """Decades of scale beyond the largest fitted run, per query point (0 inside)."""
        scale = sum(np.asarray(logx[k], dtype=float) for k in inputs)
        return np.maximum(0.0, (scale - self.scale_max) / np.log(10.0))

    def widen(self, noisy: np.ndarray, logx: dict[str, np.ndarray], inputs: tuple[str, ...],
              rng: np.random.Generator) -> np.ndarray:
        """Draws of a one-run prediction [R, n] (or [R]) at log inputs ``logx`` [n] (or [R]), times the
        extrapolation error exp(N(0, (kappa d)^2)); unchanged inside the runs or when kappa is 0."""
        if self.kappa <= 0:
            return noisy
        sd = self.kappa * self.distance(logx, inputs)
        return noisy * np.exp(rng.standard_normal(np.shape(noisy)) * sd)


def _scale(data: LawData, inputs: tuple[str, ...]) -> np.ndarray:
    return sum(data.logx[k] for k in inputs)


def calibrate(form, data: LawData, delta: float, seed: int = 0, *, fit_data: Callable[..., Any],
              bootstrap: Callable[..., Any]) -> Extrapolation | None:
    """Learn the inflation from rollouts of ``form`` on ``data`` (None when no rollout can be fitted). The
    engine's ``fit_data`` and ``bootstrap`` are passed in (``laws.bootstrap.extrapolation_of`` does), so this
    module stays below both."""

    inputs = form.inputs
    scale = _scale(data, inputs)
    lo, hi = float(scale.min()), float(scale.max())
    scores, rollouts = [], 0
    for k, share in progress.over(enumerate(CUTOFF_SHARES), f"calibrating {form.name} for extrapolation",
                                  unit="rollouts", total=len(CUTOFF_SHARES)):
        below = scale <= lo + share * (hi - lo) + 1e-12
        if below.all() or len(np.unique(data.groups[below])) < form.min_runs + 1:
            continue
        try:
            law = fit_data(form, data.subset(below), delta, n_refine=4, n_polish=1, calibrate=False)
            boot = bootstrap(law, n_resamples=ROLLOUT_RESAMPLES, seed=seed + k)
        except GaitforecastError:
            continue
        test = data.subset(~below)
        logx = {k_: test.logx[k_] for k_ in inputs}
        point = form.log_predict(law.theta, logx)[0]
        spread = np.std(form.log_predict(boot.thetas, logx)[0], axis=0)  # the bootstrap's parameter noise
        e = test.logy - point
        d = (_scale(test, inputs) - float(scale[below].max())) / np.log(10.0)
        keep = d > 1e-9
        need = np.sqrt(np.maximum((e / Z95) ** 2 - law.residual_sd ** 2 - spread ** 2, 0.0))
        scores.append(need[keep] / d[keep])
        rollouts += 1
    if not rollouts:
        return None
    s = np.concatenate(scores)
    if not len(s):
        return None
    return Extrapolation(kappa=float(np.quantile(s, LEVEL)), scale_max=hi, n_pairs=int(len(s)), n_rollouts=rollouts)

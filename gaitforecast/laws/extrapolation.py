"""How wrong is a law when it extrapolates? Calibrated on the runs' own rollouts (conformal).

The bootstrap prices parameter noise and the scatter of one run; a law that is slightly wrong in shape is
wrong by more the further it extrapolates, which neither term sees (on the Chinchilla table's rollout the
bootstrap's 95 % intervals covered 61-68 % of the larger runs). Here the fitted runs are rolled out on
themselves: fit below several compute cutoffs, bootstrap that fit (100 resamples), predict the larger runs, and
score each error by how far it fell outside its own 95 % prediction interval (log units of the fitted target)
per decade it extrapolated: need = max(0, |error| - half-width) / d, with d the decades of scale (the sum of the
law's log inputs: log compute, or log N + log D) beyond the rollout's largest run. The 95th percentile of
``need`` (split-conformal on rollouts) is ``kappa``: beyond the fitted runs a prediction interval's half-widths
grow by kappa * d in log units. A law whose bootstrap already covers its rollouts gets kappa 0 and unchanged
intervals (measured on synthetic truths); inside the fitted runs' range nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    kappa: float  # log units added to the 95 % interval's half-widths per decade beyond the data
    scale_max: float  # log scale (sum of the law's log inputs) of the largest fitted run
    n_pairs: int  # rollout predictions it was learned from
    n_rollouts: int
    raw_coverage: float  # share of rollout predictions inside their own bootstrap interval

    def distance(self, logx: dict[str, np.ndarray], inputs: tuple[str, ...]) -> np.ndarray:
        """Decades of scale beyond the largest fitted run, per query point (0 inside)."""
        scale = sum(np.asarray(logx[k], dtype=float) for k in inputs)
        return np.maximum(0.0, (scale - self.scale_max) / np.log(10.0))

    def to_dict(self) -> dict:
        return {"kappa_per_decade": self.kappa, "n_pairs": self.n_pairs, "n_rollouts": self.n_rollouts,
                "rollout_coverage_before": self.raw_coverage}


def _scale(data: LawData, inputs: tuple[str, ...]) -> np.ndarray:
    return sum(data.logx[k] for k in inputs)


def calibrate(form, data: LawData, delta: float, seed: int = 0) -> Extrapolation | None:
    """Learn the inflation from rollouts of ``form`` on ``data`` (None when no rollout can be fitted)."""
    from gaitforecast.laws.bootstrap import bootstrap  # late: bootstrap -> fit -> (this module, at call time)
    from gaitforecast.laws.fit import fit_data

    inputs = form.inputs
    scale = _scale(data, inputs)
    lo, hi = float(scale.min()), float(scale.max())
    scores, inside, rollouts = [], [], 0
    for k, share in enumerate(CUTOFF_SHARES):
        progress.step(f"calibrating {form.name} for extrapolation: rollout {k + 1} of {len(CUTOFF_SHARES)}")
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
        half = Z95 * np.sqrt(law.residual_sd ** 2 + spread ** 2)
        inside.append((np.abs(e) <= half)[keep])
        rollouts += 1
    if not rollouts:
        return None
    s = np.concatenate(scores)
    if not len(s):
        return None
    return Extrapolation(kappa=float(np.quantile(s, LEVEL)), scale_max=hi, n_pairs=int(len(s)),
                         n_rollouts=rollouts, raw_coverage=float(np.mean(np.concatenate(inside))))

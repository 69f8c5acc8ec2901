"""Two-step forecasts: compute (N, D) -> a smooth loss -> the accuracy, through a fitted sigmoid link.

Downstream accuracy is bounded and noisy; language-model ladders forecast it in two steps (a law for a loss,
then a link from the loss to the accuracy). Step 1 is any law of the engine fitted to the ``via`` metric (a
loss, e.g. ``ssl_loss_heldout``); step 2 is the link

    accuracy = c / (1 + exp(k (L - m)))        c in (0, 1], k > 0

fitted by least squares on the runs' (L, accuracy) pairs. The bootstrap resamples runs once for both steps (the
same run-level weights as the step-1 bootstrap), so the intervals carry the uncertainty of both. Prediction
intervals add the chain's own scatter (each run's accuracy against link(law(N, D)) at the point fit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import progress
from gaitforecast.laws.bootstrap import BootstrapResult, bootstrap, resample_weights
from gaitforecast.laws.data import metric_kind, prepare
from gaitforecast.laws.fit import LawFitter
from gaitforecast.laws.threads import single_blas_thread


def link(loss: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The sigmoid link c / (1 + exp(k (L - m))) for parameters p [..., 3] = (c, k, m), broadcast over loss."""
    p = np.asarray(p, dtype=float)
    c, k, m = (p[..., i, None] if p.ndim > 1 else p[i] for i in range(3))
    z = np.clip(k * (np.asarray(loss, dtype=float) - m), -60.0, 60.0)
    return c / (1.0 + np.exp(z))


def fit_link(loss: np.ndarray, acc: np.ndarray, weights: np.ndarray | None = None,
             start: np.ndarray | None = None) -> np.ndarray:
    """Least-squares fit of the link to (loss, accuracy) pairs; returns (c, k, m)."""
    w = np.sqrt(np.ones_like(acc) if weights is None else weights)
    spread = max(float(np.ptp(loss)), 1e-6)
    if start is None:
        start = np.array([min(1.0, 1.2 * float(acc.max())), 4.0 / spread, float(np.median(loss))])
    res = least_squares(lambda p: (link(loss, p) - acc) * w, start,
                        bounds=([1e-6, 1e-6, float(loss.min()) - 10 * spread],
                                [1.0, 1e3, float(loss.max()) + 10 * spread]),
                        x_scale="jac", max_nfev=500)
    return res.x


@dataclass(frozen=True)
class TwoStep:
    """A fitted two-step forecast: step-1 law (with its bootstrap) for ``via``, link draws for ``metric``."""

    metric: str
    via: str
    loss: BootstrapResult
    link_point: np.ndarray  # (c, k, m) fitted on all runs
    link_draws: np.ndarray = field(repr=False)  # [R, 3], one per bootstrap resample (same resamples as loss)
    residuals: np.ndarray = field(repr=False)  # accuracy - link(law(N, D)) of each run at the point fit

    def predict(self, params=None, samples=None, flops=None, level: float = 0.95, seed: int = 1) -> pd.DataFrame:
        """Predicted accuracy with confidence and prediction intervals (one row per input point)."""
        law = self.loss.law
        point_loss = np.atleast_1d(law.data.to_metric_units(law.predict_fitted(params, samples, flops))).ravel()
        draws_loss = law.data.to_metric_units(law.predict_fitted(params, samples, flops, theta=self.loss.thetas))
        return self.bands(point_loss, draws_loss.reshape(len(self.loss.thetas), -1), level, seed)

    def bands(self, point_loss: np.ndarray, draws_loss: np.ndarray, level: float = 0.95,
              seed: int = 1) -> pd.DataFrame:
        """Accuracy bands from step-1 loss values: the point fit's ``point_loss`` [n] and each resample's
        ``draws_loss`` [R, n], each through its own link; prediction intervals add the chain's scatter."""
        point = link(point_loss, self.link_point)
        draws = link(draws_loss, self.link_draws)
        rng = np.random.default_rng(seed)
        noisy = np.clip(draws + rng.choice(self.residuals, size=draws.shape), 0.0, 1.0)
        tail = 50.0 * (1.0 - level)
        ci_lo, ci_hi = np.percentile(draws, [tail, 100 - tail], axis=0)
        pi_lo, pi_hi = np.percentile(noisy, [tail, 100 - tail], axis=0)
        return pd.DataFrame({"predicted": point, "ci_lo": ci_lo, "ci_hi": ci_hi, "pi_lo": pi_lo, "pi_hi": pi_hi,
                             "via_predicted": point_loss})

    def to_dict(self) -> dict:
        c, k, m = (float(v) for v in self.link_point)
        lo, hi = np.percentile(self.link_draws, [2.5, 97.5], axis=0)
        return {"metric": self.metric, "via": self.via, "via_law": self.loss.law.law,
                "link": {"c": c, "k": k, "m": m}, "link_formula": "accuracy = c / (1 + exp(k (L - m)))",
                "link_ci": {n: [float(a), float(b)] for n, a, b in zip("ckm", lo, hi)},
                "via_params": dict(self.loss.law.params), "n_runs": int(self.loss.law.n_runs)}


def _pairs(runs: pd.DataFrame, metric: str, via: str) -> tuple[pd.DataFrame, np.ndarray]:
    for name in (metric, via):
        if name not in runs.columns:
            raise GaitforecastError(f"unknown metric {name!r}; the runs have: "
                                    + ", ".join(c for c in runs.columns if c not in ("id", "config")))
    if metric_kind(runs, metric) != "accuracy":
        raise GaitforecastError(f"a two-step forecast maps a loss to an accuracy; {metric!r} is not an accuracy "
                                "(pass --kind accuracy if it is one)")
    if metric_kind(runs, via) == "accuracy":
        raise GaitforecastError(f"--via {via!r} is an accuracy; step 1 needs a smooth loss (e.g. ssl_loss_heldout)")
    both = runs[pd.to_numeric(runs[metric], errors="coerce").notna()
                & pd.to_numeric(runs[via], errors="coerce").notna()]
    return both, pd.to_numeric(both[metric]).to_numpy(dtype=float)


@single_blas_thread
def fit_two_step(runs: pd.DataFrame, metric: str, via: str, law: str = "chinchilla", n_resamples: int = 1000,
                 seed: int = 0, huber_delta: float = 1e-3) -> TwoStep:
    """Fit step 1 (``law`` on ``via``) with its bootstrap and the link per resample; see the module doc."""
    both, acc = _pairs(runs, metric, via)
    data = prepare(both, via, ())
    if len(data.y) != len(acc):
        raise GaitforecastError(f"{len(acc) - len(data.y)} run(s) with {metric!r} could not be used for {via!r}")
    fitted = LawFitter(law=law, huber_delta=huber_delta).fit(data)
    boot = bootstrap(fitted, n_resamples=n_resamples, seed=seed)
    loss = data.to_metric_units(data.y)
    point = fit_link(loss, acc)
    weights = resample_weights(data.groups, n_resamples, seed)  # the step-1 bootstrap's own resamples
    progress.step(f"fitting the link from {via} to {metric}", total=n_resamples, unit="resamples")
    draws = np.empty((n_resamples, 3))
    for i, w in enumerate(weights):
        draws[i] = fit_link(loss, acc, w, start=point)
        progress.advance(i + 1)
    chain = link(fitted.predict(**{k: np.exp(data.logx[k]) for k in fitted.form.inputs}), point)
    return TwoStep(metric=metric, via=via, loss=boot, link_point=point, link_draws=draws, residuals=acc - chain)


@dataclass(frozen=True)
class TwoStepBacktest:
    fit_below: float
    n_fit: int
    n_test: int
    median_abs_error: float
    median_rel_error: float
    coverage: float
    median_interval_width: float
    rows: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "rows"}
        out["rows"] = self.rows.to_dict(orient="records")
        return out


def backtest_two_step(runs: pd.DataFrame, metric: str, via: str, law: str = "chinchilla",
                      fit_below: float | None = None, n_resamples: int = 300, seed: int = 0) -> TwoStepBacktest:
    """Rollout backtest of the two-step forecast: fit both steps below ``fit_below`` FLOPs (default as
    :func:`gaitforecast.laws.backtest`), predict the larger runs' accuracy."""
    from gaitforecast.laws.backtest import default_cutoff

    both, acc = _pairs(runs, metric, via)
    flops = pd.to_numeric(both["flops"], errors="coerce").to_numpy(dtype=float)
    cutoff = default_cutoff(np.log(flops)) if fit_below is None else float(fit_below)
    below = flops <= cutoff * (1 + 1e-12)
    if below.all() or not below.any():
        raise GaitforecastError(f"a cutoff of {cutoff:.3g} FLOPs leaves no run to {'test' if below.all() else 'fit'}")
    model = fit_two_step(both[below], metric, via, law, n_resamples, seed)
    test = both[~below]
    inputs = {k: pd.to_numeric(test[k]).to_numpy(dtype=float) for k in model.loss.law.form.inputs}
    bands = model.predict(**inputs)
    actual = acc[~below]
    pred = bands["predicted"].to_numpy()
    inside = (actual >= bands["pi_lo"].to_numpy()) & (actual <= bands["pi_hi"].to_numpy())
    rows = pd.DataFrame({"id": test["id"].astype(str).to_numpy(), "flops": flops[~below], "actual": actual,
                         "predicted": pred, "pi_lo": bands["pi_lo"].to_numpy(), "pi_hi": bands["pi_hi"].to_numpy(),
                         "inside_pi": inside}).sort_values("flops", ignore_index=True)
    return TwoStepBacktest(
        fit_below=cutoff, n_fit=int(below.sum()), n_test=int((~below).sum()),
        median_abs_error=float(np.median(np.abs(pred - actual))),
        median_rel_error=float(np.median(np.abs(pred - actual) / np.maximum(np.abs(actual), 1e-12))),
        coverage=float(np.mean(inside)), median_interval_width=float(np.median(rows["pi_hi"] - rows["pi_lo"])),
        rows=rows)

"""Runs drawn from a known law, for tests, benchmarks and "would the fitter find the truth?" checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gaitforecast.laws.forms import get_form


def synthetic_runs(law: str, params: dict[str, float], n_configs: int = 60, seeds: int = 1,
                   noise: float = 0.01, seed: int = 0, params_range=(1e5, 1e8), samples_range=(1e6, 1e9),
                   metric: str = "loss", arch: str = "synthetic", ratio: float = 6.0) -> pd.DataFrame:
    """A runs table (id, arch, seed, params, samples, flops, <metric>) drawn from ``law`` with ``params``.

    Configurations are log-uniform in params and samples (flops = ratio * params * samples); each is run
    ``seeds`` times with multiplicative log-normal noise of SD ``noise`` on the fitted target. For an
    accuracy-like ``metric`` the law gives the form's fitted target (-ln accuracy, or the error rate for the
    sigmoid) and the table holds the accuracy.
    """
    form = get_form(law)
    rng = np.random.default_rng(seed)
    ln_n = rng.uniform(*np.log(params_range), n_configs)
    ln_d = rng.uniform(*np.log(samples_range), n_configs)
    ln_n, ln_d = np.repeat(ln_n, seeds), np.repeat(ln_d, seeds)
    ln_c = np.log(ratio) + ln_n + ln_d
    theta = theta_from_params(law, params)
    pred, _ = form.log_predict(theta, {"params": ln_n, "samples": ln_d, "flops": ln_c})
    y = np.exp(pred + rng.normal(0.0, noise, len(pred)))
    from gaitforecast.laws.data import from_target, is_accuracy_metric

    values = from_target(y, form.accuracy_target) if is_accuracy_metric(metric) else y
    return pd.DataFrame({
        "id": [f"{arch}-{i}" for i in range(len(y))], "arch": arch, "seed": np.tile(np.arange(seeds), n_configs),
        "params": np.exp(ln_n), "samples": np.exp(ln_d), "flops": np.exp(ln_c), metric: values,
    })


def theta_from_params(law: str, params: dict[str, float]) -> np.ndarray:
    """Internal parameter vector of ``law`` for user-facing ``params`` (inverse of ``form.params``)."""
    return get_form(law).theta(params)

"""Bootstrap: Epoch-sized intervals on Chinchilla, speed, seeds resampled together, coverage on synthetic draws."""

import time

import numpy as np
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import bootstrap, curve, fit_law
from gaitforecast.laws.bootstrap import resample_weights
from gaitforecast.laws.synthetic import synthetic_runs
from laws_data import chinchilla_runs

TRUE = {"E": 0.5, "A": 250.0, "k": 0.2}


@pytest.fixture(scope="module")
def chinchilla_boot():
    start = time.perf_counter()
    boot = bootstrap(fit_law(chinchilla_runs(), "loss", "chinchilla"), n_resamples=1000, seed=0)
    return boot, time.perf_counter() - start


def test_chinchilla_intervals_match_epoch(chinchilla_boot):
    boot, _ = chinchilla_boot
    ci, se = boot.param_ci(), boot.param_se()
    assert boot.n_failed <= 10 and len(boot.thetas) >= 990
    # Epoch (4000 resamples): alpha 0.317-0.373, beta 0.331-0.415, E 1.769-1.871, SE alpha 0.015, beta 0.021
    assert ci["alpha"][0] == pytest.approx(0.317, abs=0.01) and ci["alpha"][1] == pytest.approx(0.373, abs=0.01)
    assert ci["beta"][0] == pytest.approx(0.331, abs=0.012) and ci["beta"][1] == pytest.approx(0.415, abs=0.015)
    assert ci["E"][0] == pytest.approx(1.769, abs=0.015) and ci["E"][1] == pytest.approx(1.871, abs=0.015)
    assert se["alpha"] == pytest.approx(0.0154, rel=0.25) and se["beta"] == pytest.approx(0.0206, rel=0.25)
    for name, (lo, hi) in ci.items():
        assert lo < boot.law.params[name] < hi, name


def test_point_fit_plus_1000_resamples_is_fast(chinchilla_boot):
    _, seconds = chinchilla_boot
    assert seconds < 10.0  # issue 5: under 10 s on 2 cores (typically ~2 s)


def test_prediction_bands_are_ordered(chinchilla_boot):
    boot, _ = chinchilla_boot
    bands = boot.predict(params=[1e9, 7e10], samples=[2e10, 1.4e12])
    assert list(bands.columns) == ["predicted", "ci_lo", "ci_hi", "pi_lo", "pi_hi"]
    assert (bands["pi_lo"] < bands["ci_lo"]).all() and (bands["ci_lo"] < bands["predicted"]).all()
    assert (bands["predicted"] < bands["ci_hi"]).all() and (bands["ci_hi"] < bands["pi_hi"]).all()
    # the further out, the wider the confidence band
    widths = (bands["ci_hi"] - bands["ci_lo"]) / bands["predicted"]
    assert widths[1] > 3 * widths[0]


def test_seeds_of_one_configuration_are_resampled_together():
    groups = np.repeat(np.arange(10), 3)
    weights = resample_weights(groups, 200, seed=1)
    assert weights.shape == (200, 30)
    assert (weights.reshape(200, 10, 3).std(axis=2) == 0).all()
    assert (weights.sum(axis=1) == 30).all()  # 10 configs drawn, each with its 3 seeds


def test_accuracy_predictions_come_back_in_accuracy_units():
    runs = synthetic_runs("power-compute", {"E": 0.1, "A": 100.0, "k": 0.2}, n_configs=40, noise=0.02, seed=0,
                          metric="synth-grew.rank5")
    boot = bootstrap(fit_law(runs, "synth-grew.rank5", "power-compute"), n_resamples=200)
    bands = boot.predict(flops=[1e13, 1e18])
    assert (bands["predicted"] > 0.5).all() and (bands["predicted"] < 0.9).all()
    assert (bands["pi_lo"] <= bands["predicted"]).all() and (bands["predicted"] <= bands["pi_hi"]).all()
    plot = curve(boot, n_points=20)
    assert len(plot) == 20 and plot["flops"].is_monotonic_increasing
    assert plot["predicted"].is_monotonic_increasing  # accuracy grows with compute


def test_coverage_on_repeated_synthetic_draws():
    """95 % intervals should hold the truth ~95 % of the time; tolerances are ~3 SD for the number of draws."""
    draws, new_points = 40, 25
    hits, k_hat, k_se, pi_cover = [], [], [], []
    for s in range(draws):
        runs = synthetic_runs("power-compute", TRUE, n_configs=40, noise=0.02, seed=s)
        boot = bootstrap(fit_law(runs, "loss", "power-compute"), n_resamples=200, seed=s)
        ci = boot.param_ci()
        hits.append([ci[name][0] <= value <= ci[name][1] for name, value in TRUE.items()])
        k_hat.append(boot.law.params["k"])
        k_se.append(boot.param_se()["k"])
        fresh = synthetic_runs("power-compute", TRUE, n_configs=new_points, noise=0.02, seed=10_000 + s)
        bands = boot.predict(flops=fresh["flops"])
        pi_cover.append(np.mean((bands["pi_lo"] <= fresh["loss"]) & (fresh["loss"] <= bands["pi_hi"])))
    per_param = np.mean(hits, axis=0)
    # binomial SD for 40 draws at p = 0.95 is 0.034: each parameter's coverage must be above 0.85
    assert (per_param >= 0.85).all(), per_param
    # intervals must not be uselessly wide: bootstrap SE ~ the real spread of the estimate across draws
    assert np.mean(k_se) / np.std(k_hat, ddof=1) == pytest.approx(1.0, abs=0.35)
    # prediction intervals for new runs: per-draw coverage SD ~0.045 -> SD of the mean ~0.007
    assert np.mean(pi_cover) == pytest.approx(0.95, abs=0.03)


def test_refuses_too_few_resamples():
    runs = synthetic_runs("power-compute", TRUE, n_configs=20, seed=0)
    with pytest.raises(GaitforecastError, match="at least 20 bootstrap resamples"):
        bootstrap(fit_law(runs, "loss", "power-compute"), n_resamples=5)

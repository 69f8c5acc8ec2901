"""Backtests, form selection, architecture comparison and diagnostics."""

import numpy as np
import pandas as pd
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import backtest, compare, diagnose, fit_law, prepare, rank_forms, resolve_law, seed_noise
from gaitforecast.laws.synthetic import synthetic_runs
from laws_data import OFFSETS, chinchilla_runs, offset_runs

SURFACE = {"E": 1.5, "A": 300.0, "B": 800.0, "alpha": 0.35, "beta": 0.3}


@pytest.fixture(scope="module")
def surface_runs():
    return synthetic_runs("chinchilla", SURFACE, n_configs=80, noise=0.005, seed=5)


def test_backtest_on_a_known_law_is_accurate_and_calibrated(surface_runs):
    result = backtest(surface_runs, "loss", "chinchilla", n_resamples=300)
    assert result.n_fit + result.n_test == 80 and result.n_test >= 10
    assert result.median_rel_error < 0.01 and abs(result.bias) < 0.01
    assert result.coverage >= 0.8
    rows = result.rows
    assert (rows["flops"] > result.fit_below).all() and rows["flops"].is_monotonic_increasing
    assert {"id", "actual", "predicted", "pi_lo", "pi_hi", "rel_error", "inside_pi"} <= set(rows.columns)
    assert result.median_rel_error == pytest.approx(np.median(np.abs(rows["rel_error"])))
    assert result.coverage == pytest.approx(rows["inside_pi"].mean())


@pytest.mark.parametrize("metric", ["loss", "synth-casiab.rank1_mean"])
def test_median_abs_error_is_in_metric_units(metric):
    runs = offset_runs(metric)
    result = backtest(runs, metric, "power-compute", fit_below=3e14, n_resamples=50)
    assert (result.n_fit, result.n_test) == (15, 5)
    assert result.rows["predicted"].to_numpy() - result.rows["actual"].to_numpy() == pytest.approx(-OFFSETS, abs=1e-9)
    assert result.median_abs_error == pytest.approx(0.02, abs=1e-9)
    rel = np.median(np.abs(OFFSETS / runs[metric].to_numpy()[-5:]))
    assert result.median_rel_error == pytest.approx(rel, abs=1e-9) and abs(result.median_rel_error - 0.02) > 1e-4
    assert result.to_dict()["median_abs_error"] == result.median_abs_error


def test_backtest_on_chinchilla():
    result = backtest(chinchilla_runs(), "loss", "chinchilla", fit_below=1e21, n_resamples=200)
    assert (result.n_fit, result.n_test) == (217, 23)
    assert result.median_rel_error == pytest.approx(0.0087, abs=0.002) and abs(result.bias) < 0.005
    # the bootstrap alone prices parameter noise and run scatter, which under-covers extrapolation on this
    # table; the rollout-calibrated extrapolation term brings the 95 % intervals to their nominal coverage
    raw = backtest(chinchilla_runs(), "loss", "chinchilla", fit_below=1e21, n_resamples=200, calibrate=False)
    assert 0.4 < raw.coverage < 0.8
    assert result.coverage >= 0.9 and result.median_interval_width > raw.median_interval_width


def test_calibration_leaves_a_correct_law_alone_on_repeated_synthetic_rollouts():
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    inside = n = 0
    for seed in range(3):
        runs = synthetic_runs("chinchilla", truth, n_configs=60, noise=0.02, seed=seed)
        cal = backtest(runs, "loss", "chinchilla", n_resamples=200, seed=seed)
        raw = backtest(runs, "loss", "chinchilla", n_resamples=200, seed=seed, calibrate=False)
        inside, n = inside + int(cal.rows["inside_pi"].sum()), n + cal.n_test
        assert cal.median_interval_width < 1.2 * raw.median_interval_width  # no needless widening
    assert 0.9 <= inside / n <= 1.0


def test_ranking_picks_the_true_form(surface_runs):
    table = rank_forms(surface_runs, "loss", n_resamples=100)
    assert list(table["law"])[0] == "chinchilla"
    assert set(table["law"]) == {"chinchilla", "power-compute", "power-params", "power-data"}  # no sigmoid for loss
    assert table["median_rel_error"].is_monotonic_increasing
    assert resolve_law(prepare(surface_runs, "loss"), "auto") == "chinchilla"
    assert resolve_law(prepare(surface_runs, "loss"), "default") == "chinchilla"


def test_ranking_of_an_accuracy_metric_includes_the_sigmoid():
    runs = synthetic_runs("sigmoid-compute", {"E": 0.05, "k": 0.9, "C_mid": 1e14}, n_configs=60, noise=0.01,
                          seed=2, metric="synth-gait3d.mAP")
    table = rank_forms(runs, "synth-gait3d.mAP", n_resamples=100)
    assert "sigmoid-compute" in set(table["law"])
    assert table.iloc[0]["law"] == "sigmoid-compute"


def test_backtest_refuses_a_cutoff_outside_the_runs(surface_runs):
    with pytest.raises(GaitforecastError, match="leaves no run to test"):
        backtest(surface_runs, "loss", "chinchilla", fit_below=1e30)
    with pytest.raises(GaitforecastError, match="leaves every run to fit"):
        backtest(surface_runs, "loss", "chinchilla", fit_below=1.0)
    with pytest.raises(GaitforecastError, match="needs at least 7 distinct runs"):
        backtest(surface_runs, "loss", "chinchilla", fit_below=np.sort(surface_runs["flops"])[3])


def _two_archs(advantage: float) -> pd.DataFrame:
    a = synthetic_runs("power-compute", {"E": 0.3, "A": 250.0, "k": 0.2}, n_configs=30, noise=0.01, seed=1,
                       arch="small-a")
    b = synthetic_runs("power-compute", {"E": 0.3 * advantage, "A": 250.0 * advantage, "k": 0.2}, n_configs=30,
                       noise=0.01, seed=2, arch="small-b")
    return pd.concat([a, b], ignore_index=True)


def test_compare_finds_the_dominant_architecture():
    result = compare(_two_archs(0.8), "loss", law="power-compute", n_resamples=200)
    assert {result.arch_a, result.arch_b} == {"small-a", "small-b"}
    assert result.dominates == "small-b"  # 20 % lower loss everywhere
    assert len(result.rows) == 8 and (result.rows["better"] == "small-b").all()
    sign = -1.0 if result.arch_b == "small-b" else 1.0
    assert (sign * result.rows["diff"] > 0).all()
    assert (result.rows["diff_lo"] < result.rows["diff"]).all() and (result.rows["diff"] < result.rows["diff_hi"]).all()


def test_compare_with_equal_architectures_finds_no_winner():
    result = compare(_two_archs(1.0), "loss", law="power-compute", n_resamples=200)
    assert result.dominates is None
    assert (result.rows["better"].isna()).mean() >= 0.75


def test_compare_needs_two_architectures(surface_runs):
    with pytest.raises(GaitforecastError, match="at least two architectures"):
        compare(surface_runs, "loss")


def test_seed_noise_from_replicates_and_warnings():
    runs = synthetic_runs("power-compute", {"E": 0.5, "A": 250.0, "k": 0.2}, n_configs=20, seeds=4, noise=0.03,
                          seed=0)
    noise = seed_noise(prepare(runs, "loss"))
    assert noise["replicated_configs"] == 20
    assert noise["sd_log"] == pytest.approx(0.03, rel=0.2)
    quiet = diagnose(fit_law(runs, "loss", "power-compute"))
    assert not any("seed noise" in w for w in quiet["warnings"])
    weak = synthetic_runs("power-compute", {"E": 0.5, "A": 2.0, "k": 0.2}, n_configs=20, seeds=4, noise=0.03,
                          seed=0)  # the law moves the loss by ~1 %, the seeds by 3 %
    loud = diagnose(fit_law(weak, "loss", "power-compute"))
    assert any("seed noise" in w for w in loud["warnings"])
    narrow = runs.assign(flops=runs["flops"] ** 0.1 * 1e13)  # squeeze the compute span tenfold
    short = diagnose(fit_law(narrow, "loss", "power-compute"))
    span = np.log10(runs["flops"].max() / runs["flops"].min())
    assert short["compute_span_decades"] == pytest.approx(span / 10, rel=1e-6) and span / 10 < 1.0
    assert any(f"only {span / 10:.2f} decades of compute" in w for w in short["warnings"])

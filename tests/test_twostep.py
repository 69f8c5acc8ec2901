"""Two-step forecasts (compute -> loss -> accuracy through a sigmoid link) against direct laws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import backtest
from gaitforecast.laws.synthetic import synthetic_runs
from gaitforecast.laws.twostep import backtest_two_step, fit_two_step, link

LINK = np.array([0.9, 3.0, 2.6])  # accuracy = 0.9 / (1 + exp(3 (L - 2.6))): it bends inside the runs' range


def sigmoid_world(seed: int = 0) -> pd.DataFrame:
    runs = synthetic_runs("chinchilla", {"E": 1.7, "A": 60.0, "B": 60.0, "alpha": 0.34, "beta": 0.28},
                          n_configs=50, noise=0.01, seed=seed, params_range=(1e5, 1e9), samples_range=(1e6, 1e10))
    rng = np.random.default_rng(seed)
    runs["top1"] = np.clip(link(runs["loss"].to_numpy(), LINK) + rng.normal(0, 0.005, len(runs)), 0.001, 0.999)
    return runs


def test_two_step_recovers_the_link_and_beats_a_direct_law_on_a_sigmoid_world():
    runs = sigmoid_world()
    model = fit_two_step(runs, "top1", "loss", n_resamples=200)
    c, k, m = model.link_point
    assert c == pytest.approx(0.9, abs=0.03) and k == pytest.approx(3.0, rel=0.2) and m == pytest.approx(2.6, abs=0.1)
    assert model.link_draws.shape == (200, 3)
    two = backtest_two_step(runs, "top1", "loss", n_resamples=200)
    direct = backtest(runs, "top1", "chinchilla", fit_below=two.fit_below, n_resamples=200)
    assert two.n_test == direct.n_test > 5
    assert two.median_abs_error < 0.5 * direct.median_abs_error  # the bend is what a direct law cannot follow
    assert two.coverage >= 0.8
    bands = model.predict(params=[1e9], samples=[1e10])
    assert bands["pi_lo"][0] <= bands["ci_lo"][0] <= bands["predicted"][0] <= bands["ci_hi"][0] <= bands["pi_hi"][0]


def test_two_step_needs_a_loss_to_go_through_and_an_accuracy_to_reach():
    runs = sigmoid_world()
    with pytest.raises(GaitforecastError, match="is an accuracy; step 1 needs a smooth loss"):
        fit_two_step(runs, "top1", "top1")
    with pytest.raises(GaitforecastError, match="is not an accuracy"):
        fit_two_step(runs, "loss", "loss")


def test_cli_predict_and_backtest_via(tmp_path):
    import json

    from gaitforecast.store import RunStore
    from test_cli_runs import gaitforecast

    store = tmp_path / "s.duckdb"
    RunStore(store).import_runs(sigmoid_world().drop(columns=["id"]), "sigmoid.csv")
    res = gaitforecast("backtest", "--store", str(store), "--metric", "top1", "--via", "loss", "--resamples", "100",
                       "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["winner"] == "two-step" and out["median_abs_error"] < out["direct"]["median_abs_error"]
    assert {"median_interval_width", "coverage", "rows", "via"} <= set(out)
    res = gaitforecast("predict", "--store", str(store), "--metric", "top1", "--via", "loss", "--params", "1e9",
                       "--samples", "1e10", "--resamples", "100", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["via"] == "loss" and out["predicted_pi"][0] <= out["predicted"] <= out["predicted_pi"][1]
    point_link = np.array([out["link"][k] for k in "ckm"])  # the point forecast is the link of the point loss
    assert out["predicted"] == pytest.approx(float(link(np.array([out["via_predicted"]]), point_link)[0]), abs=1e-9)

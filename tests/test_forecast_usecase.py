"""One forecast use case for every face: the CLI and the dashboard give the same fit and the same forecast for the
same store, with the same defaults (gaitforecast.forecast holds them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dashboard_stores as ds
from test_cli_runs import gaitforecast
from test_dashboard import metrics, page

from gaitforecast import forecast
from gaitforecast.dashboard import ui
from gaitforecast.store import RunStore


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("agree") / "store.duckdb"
    ds.own_store(path)
    return path


def test_dashboard_and_cli_share_the_defaults():
    assert ui.DEFAULT_BOOTSTRAP == forecast.DEFAULT_RESAMPLES == 1000
    request = forecast.Request()
    assert (request.law, request.arch, request.metric, request.seed) == ("default", None, None, 0)


def test_cli_and_dashboard_give_the_same_forecast(own, monkeypatch):
    res = gaitforecast("predict", "--budget", "1e15", "--store", str(own), "--json", cwd=own.parent)
    assert res.returncode == 0, res.stderr
    cli = json.loads(res.stdout)
    at = page(own, "forecast", monkeypatch, budget="1e15")
    table = at.table[0].value
    # the page shows 4 significant digits of the very numbers the CLI prints
    for row, key in (("parameters N_opt", "params_opt"), ("samples D_opt", "samples_opt")):
        assert table.loc[row, "value"] == f"{cli[key]:.4g}"
        assert table.loc[row, "95% low"] == f"{cli[key + '_ci'][0]:.4g}"
        assert table.loc[row, "95% high"] == f"{cli[key + '_ci'][1]:.4g}"
    rows = [r for r in table.index if r.endswith("(confidence interval)")]
    assert table.loc[rows[0], "value"] == f"{cli['predicted']:.4g}"
    assert cli["arch"] == at.sidebar.selectbox(key="arch").value == "gaitpt"  # the most runs, on both faces
    assert cli["n_resamples"] == 1000
    assert f"Law `{cli['law']}`" in " ".join(c.value for c in at.caption)


def test_cli_fit_and_scaling_page_show_the_same_parameters(own, monkeypatch):
    res = gaitforecast("fit", "--store", str(own), "--json", cwd=own.parent)
    assert res.returncode == 0, res.stderr
    cli = json.loads(res.stdout)
    at = page(own, "scaling", monkeypatch)
    shown = at.dataframe[0].value.set_index("parameter")
    for name, value in cli["params"].items():
        assert shown.loc[name, "value"] == pytest.approx(value, rel=1e-12)
        assert shown.loc[name, "ci_lo"] == pytest.approx(cli["ci"][name][0], rel=1e-12)
    assert metrics(at)["Runs fitted"] == str(cli["n_runs"])


def test_read_runs_names_what_to_run(tmp_path):
    from gaitforecast.errors import GaitforecastError

    store = tmp_path / "one.duckdb"
    with RunStore(store).writer() as w:
        w.upsert_run({"config": {"x": 1}, "status": "failed", "params": 1e6, "samples": 1e8})
    with pytest.raises(GaitforecastError, match="has no finished runs; run `gaitforecast run-small`"):
        forecast.read_runs(store)


def test_cli_predict_via_and_the_forecast_pages_two_step_show_the_same_numbers(own, monkeypatch):
    res = gaitforecast("predict", "--budget", "1e15", "--via", "loss", "--resamples", "100", "--store", str(own),
                       "--json", cwd=own.parent)
    assert res.returncode == 0, res.stderr
    cli = json.loads(res.stdout)
    assert (cli["via"], cli["via_law"], cli["arch"]) == ("loss", "chinchilla", "gaitpt")  # the defaults of both faces
    at = page(own, "forecast", monkeypatch, budget="1e15", via="loss", n_boot=100)
    assert at.selectbox(key="via").options == ["none", "loss"]  # the one loss of this store; accuracies are not offered
    answer, step1, step2 = (t.value for t in at.table[1:4])  # the direct law's answer is table 0
    for row, key in (("parameters N_opt", "params_opt"), ("samples D_opt", "samples_opt")):
        assert answer.loc[row, "value"] == f"{cli[key]:.4g}"
        assert answer.loc[row, "95% low"] == f"{cli[key + '_ci'][0]:.4g}"
        assert answer.loc[row, "95% high"] == f"{cli[key + '_ci'][1]:.4g}"
    assert answer.loc["loss predicted (step 1)", "value"] == f"{cli['via_predicted']:.4g}"
    for row, key in (("(confidence interval)", "predicted_ci"), ("(prediction interval, one run)", "predicted_pi")):
        shown = answer.loc[f"{ds.METRIC} {row}"]
        assert list(shown) == [f"{cli['predicted']:.4g}", f"{cli[key][0]:.4g}", f"{cli[key][1]:.4g}"]
    assert {k: step1.loc[k, "value"] for k in step1.index} == {k: f"{v:.4g}" for k, v in cli["via_params"].items()}
    for name in "ckm":
        assert list(step2.loc[name]) == [f"{cli['link'][name]:.4g}", f"{cli['link_ci'][name][0]:.4g}",
                                         f"{cli['link_ci'][name][1]:.4g}"]
    assert metrics(at)[f"Predicted {ds.METRIC} (two-step)"] == f"{cli['predicted']:.4g}"


def test_backtest_page_shows_the_two_step_rollout_with_the_use_cases_numbers(own, monkeypatch):
    at = page(own, "backtest", monkeypatch, n_boot=100, via_backtest="loss")
    cutoff = float(at.select_slider(key="cutoff").value)
    runs = forecast.read_runs(own)
    # what `backtest --via loss --fit-below CUTOFF --resamples 100 --json` prints
    use_case = forecast.backtest_via(runs, forecast.Request(resamples=100), "loss", fit_below=cutoff)
    both = next(d.value for d in at.dataframe if "forecast" in d.value.columns).set_index("forecast")
    two, direct = both.loc["two-step via loss (chinchilla + link)"], both.loc["direct chinchilla law"]
    assert two["median |error|"] == pytest.approx(use_case["median_abs_error"], rel=1e-12)
    assert two["median |rel. error|"] == pytest.approx(use_case["median_rel_error"], rel=1e-12)
    assert two["inside 95% PI"] == pytest.approx(use_case["coverage"], rel=1e-12)
    assert direct["median |error|"] == pytest.approx(use_case["direct"]["median_abs_error"], rel=1e-12)


def test_the_two_step_form_takes_its_place_in_the_law_ranking():
    import pandas as pd

    from gaitforecast.dashboard.viaview import with_two_step

    ranking = pd.DataFrame({"law": ["chinchilla", "power-compute", "power-params"],
                            "median_rel_error": [0.002, 0.004, float("inf")], "mean_rel_error": [0.003, 0.005, None],
                            "bias": [0.001, -0.002, None], "coverage": [1.0, 0.9, None],
                            "converged": [True, True, False], "error": [None, None, "too few runs"]})
    two = {"via": "loss", "law": "chinchilla", "median_rel_error": 0.003, "coverage": 0.75}
    ranked = with_two_step(ranking, two)
    assert list(ranked["law"]) == ["chinchilla", "two-step via loss (chinchilla + link)", "power-compute",
                                   "power-params"]
    assert ranked.loc[1, "coverage"] == 0.75 and ranked.loc[1, "error"] is None

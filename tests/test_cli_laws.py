"""`gaitforecast fit | predict | backtest | compare`: the JSON contract of issue 5 and clean refusals."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import numpy as np
import pytest
from typer.testing import CliRunner

from gaitforecast.cli import app
from gaitforecast.errors import GaitforecastError
from gaitforecast.laws.synthetic import synthetic_runs
from gaitforecast.store import RunStore
from laws_data import CHINCHILLA_CSV, chinchilla_runs, offset_runs

REPO = Path(__file__).resolve().parents[1]
FAST = ["--resamples", "200"]


@pytest.fixture(scope="module")
def chinchilla_store(tmp_path_factory):
    chinchilla_runs()  # skips when the shared data is absent
    path = tmp_path_factory.mktemp("laws") / "chinchilla.duckdb"
    RunStore(path).import_runs(pd.read_csv(CHINCHILLA_CSV), "chinchilla_epoch.csv",
                               {"params": "Model Size", "flops": "Training FLOP"}, metrics=["loss"])
    return path


def run_json(*args):
    result = CliRunner().invoke(app, [*map(str, args), "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_cli(*args):
    """The installed entry point in a fresh process: exit code and stderr as a user sees them."""
    code = "from gaitforecast.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_fit_json_contract(chinchilla_store):
    out = run_json("fit", "--store", chinchilla_store, "--drop-worst", 5, *FAST)
    assert {"law", "metric", "n_runs", "params", "ci", "converged"} <= set(out)
    assert (out["law"], out["metric"], out["n_runs"], out["converged"]) == ("chinchilla", "loss", 240, True)
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert out["params"]["alpha"] == pytest.approx(0.347, abs=0.003)
    assert out["params"]["beta"] == pytest.approx(0.367, abs=0.003)
    assert out["params"]["E"] == pytest.approx(1.817, abs=0.005)
    for name, (lo, hi) in out["ci"].items():
        assert lo < out["params"][name] < hi
    assert out["isoflop"]["exponent"] == pytest.approx(0.50, abs=0.03)


def test_predict_budget_json_contract(chinchilla_store):
    out = run_json("predict", "--store", chinchilla_store, "--budget", "5.88e23", "--drop-worst", 5, *FAST)
    keys = {"budget_flops", "params_opt", "samples_opt", "params_opt_ci", "samples_opt_ci", "predicted", "predicted_pi"}
    assert keys <= set(out)
    assert out["budget_flops"] == 5.88e23
    assert out["params_opt"] == pytest.approx(7.4e10, rel=0.03)
    assert out["samples_opt"] == pytest.approx(1.32e12, rel=0.03)
    assert out["params_opt_ci"][0] < out["params_opt"] < out["params_opt_ci"][1]
    assert out["samples_opt_ci"][0] < out["samples_opt"] < out["samples_opt_ci"][1]
    assert out["predicted"] == pytest.approx(1.973, abs=0.005)
    assert out["predicted_pi"][0] < out["predicted"] < out["predicted_pi"][1]
    assert out["cost_model"] == "6*N*D"


@pytest.mark.parametrize("text,value", [("300P", 3e17), ("2.5e18", 2.5e18)])
def test_predict_budget_units(chinchilla_store, text, value):
    out = run_json("predict", "--store", chinchilla_store, "--budget", text, "--resamples", 50)
    assert out["budget_flops"] == value and out["params_opt"] * out["samples_opt"] * 6 == pytest.approx(value)


def test_predict_one_configuration(chinchilla_store):
    out = run_json("predict", "--store", chinchilla_store, "--params", "1e9", "--samples", "2e10", *FAST)
    assert out["budget_flops"] == pytest.approx(1.2e20)
    assert out["params_opt"] is None and (out["params"], out["samples"]) == (1e9, 2e10)
    assert out["predicted_pi"][0] < out["predicted"] < out["predicted_pi"][1]
    assert out["predicted"] == pytest.approx(2.53, abs=0.03)


def test_backtest_json_contract(chinchilla_store):
    out = run_json("backtest", "--store", chinchilla_store, "--fit-below", "1e21", "--drop-worst", 5, *FAST)
    keys = {"n_fit", "n_test", "median_rel_error", "mean_rel_error", "bias", "coverage", "rows"}
    assert keys <= set(out)
    assert (out["n_fit"], out["n_test"]) == (217, 23) and len(out["rows"]) == 23
    assert out["median_rel_error"] < 0.02 and 0 <= out["coverage"] <= 1
    assert {"actual", "predicted", "pi_lo", "pi_hi", "rel_error"} <= set(out["rows"][0])
    assert [r["law"] for r in out["ranking"]][0] == out["best_ranked"]
    assert out["selected"] == out["law"] == "chinchilla"  # the headline figures are the selected law's
    assert out["kind"] == "loss"
    widths = [r["pi_hi"] - r["pi_lo"] for r in out["rows"]]
    assert out["median_interval_width"] == pytest.approx(float(np.median(widths)))


def test_backtest_median_abs_error_in_accuracy_units(tmp_path):
    store = tmp_path / "offsets.duckdb"
    metric = "synth-casiab.rank1_mean"
    RunStore(store).import_runs(offset_runs(metric).drop(columns="id"), "offsets.csv")
    args = ["backtest", "--store", store, "--metric", metric, "--law", "power-compute", "--fit-below", "3e14",
            "--no-rank", "--resamples", "50"]
    out = run_json(*args)
    assert (out["n_fit"], out["n_test"]) == (15, 5)
    assert out["median_abs_error"] == pytest.approx(0.02, abs=1e-9)  # |offsets| 0.005 0.01 0.02 0.03 0.04
    assert out["median_rel_error"] == pytest.approx(0.0231, abs=1e-3)  # the same offsets relative to ~0.87
    human = CliRunner().invoke(app, list(map(str, args)))
    assert human.exit_code == 0 and "median |error| 0.02," in human.stderr


def test_compare_json(tmp_path):
    a = synthetic_runs("power-compute", {"E": 0.3, "A": 250.0, "k": 0.2}, n_configs=20, seed=1, arch="gaitpt")
    b = synthetic_runs("power-compute", {"E": 0.24, "A": 200.0, "k": 0.2}, n_configs=20, seed=2, arch="gaitformer")
    store = tmp_path / "two.duckdb"
    RunStore(store).import_runs(pd.concat([a, b]).drop(columns="id"), "two.csv")
    out = run_json("compare", "--store", store, "--law", "power-compute", *FAST)
    assert out["metric"] == "loss" and out["dominates"] == "gaitformer"
    assert len(out["rows"]) == 8 and {"diff", "diff_lo", "diff_hi", "better"} <= set(out["rows"][0])
    assert out["law"] == "power-compute" and out["exponents"] is None and out["beta_difference"] is None
    assert out["exponents_notes"][0].startswith("no exponents or beta difference: the power-compute law")


def test_compare_json_carries_exponents_and_the_beta_difference(tmp_path):
    """Two families on Chinchilla laws with data exponents 0.30 (gaitformer, more runs: the first) and 0.55."""
    slow = {"E": 0.5, "A": 60.0, "B": 80.0, "alpha": 0.35, "beta": 0.30}
    fast = {"E": 0.5, "A": 60.0, "B": 2400.0, "alpha": 0.35, "beta": 0.55}
    a = synthetic_runs("chinchilla", slow, n_configs=30, seed=1, arch="gaitformer")
    b = synthetic_runs("chinchilla", fast, n_configs=28, seed=2, arch="gaitpt")
    store = tmp_path / "two.duckdb"
    RunStore(store).import_runs(pd.concat([a, b]).drop(columns="id"), "two.csv")
    out = run_json("compare", "--store", store, "--resamples", "100")
    assert out["law"] == "chinchilla" and out["beta_difference_of"] == ["gaitformer", "gaitpt"]
    assert set(out["exponents"]) == {"gaitformer", "gaitpt"}
    for arch, truth in (("gaitformer", slow), ("gaitpt", fast)):
        assert set(out["exponents"][arch]) == {"alpha", "beta"}
        for name, (value, lo, hi) in out["exponents"][arch].items():
            assert lo < value < hi and lo < truth[name] < hi
    value, lo, hi = out["beta_difference"]
    assert value == pytest.approx(-0.25, abs=0.03) and lo < value < hi < 0
    assert out["beta_verdict"].startswith("gaitpt scales better with data") and out["exponents_notes"] == []
    human = CliRunner().invoke(app, ["compare", "--store", str(store), "--resamples", "100"])
    assert human.exit_code == 0 and "data scaling: gaitpt scales better with data" in human.stderr
    assert "which excludes zero" in human.stderr


def test_unknown_metric_lists_the_known_ones(chinchilla_store):
    with pytest.raises(GaitforecastError, match="unknown metric 'rank1'; the runs have: loss"):
        run_json("fit", "--store", chinchilla_store, "--metric", "rank1")


def test_bad_input_exits_2_without_traceback(chinchilla_store, tmp_path):
    cases = [
        (["fit", "--store", tmp_path / "absent.duckdb"], "no run store"),
        (["predict", "--store", chinchilla_store, "--budget", "lots"], "is not a number"),
        (["predict", "--store", chinchilla_store, "--budget", "0"], "must be a positive number"),
    ]
    for args, message in cases:
        done = run_cli(*args, "--json")
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""


def test_fit_falls_back_to_the_best_backtested_form_when_the_default_is_not_identified(tmp_path):
    """Runs whose params and samples grow together (D ~ N) cannot separate Chinchilla's two exponents."""
    store = tmp_path / "collinear.duckdb"
    RunStore(store).import_runs(offset_runs("loss").drop(columns="id"), "collinear.csv")
    out = run_json("fit", "--store", store, "--metric", "loss", "--resamples", "100")
    assert out["law"] in ("power-compute", "power-params", "power-data")
    assert out["diagnostics"]["identified"] == {"k": True}
    note = next(w for w in out["warnings"] if w.startswith("the chinchilla law"))
    assert f"fitted and forecast with {out['law']} instead" in note and "--law chinchilla" in note
    forecast = run_json("predict", "--store", store, "--metric", "loss", "--resamples", "100", "--budget", "1e17")
    assert forecast["law"] in ("power-compute", "sigmoid-compute")  # a form that answers a compute budget
    assert run_cli("fit", "--store", store, "--metric", "loss", "--resamples", "100", "--law", "chinchilla").returncode == 2


def test_fit_reports_identified_exponents(chinchilla_store):
    out = run_json("fit", "--store", chinchilla_store, "--metric", "loss", "--resamples", "200")
    assert out["law"] == "chinchilla" and out["diagnostics"]["identified"] == {"alpha": True, "beta": True}
    assert not any("not identified" in w or "instead" in w for w in out["warnings"])


def test_compare_default_law_fits_the_architecture_with_the_fewest_runs(tmp_path):
    """20 runs of one family carry Chinchilla, 5 of the other only a 3-parameter law: both get power-compute."""
    truth = {"E": 0.2, "A": 60.0, "B": 300.0, "alpha": 0.3, "beta": 0.3}
    a = synthetic_runs("chinchilla", truth, n_configs=5, seed=1, arch="gaitpt")
    b = synthetic_runs("chinchilla", truth, n_configs=20, seed=2, arch="gaitformer")
    store = tmp_path / "uneven.duckdb"
    RunStore(store).import_runs(pd.concat([a, b]).drop(columns="id"), "uneven.csv")
    out = run_json("compare", "--store", store, *FAST)
    assert out["law"] == "power-compute" and len(out["rows"]) == 8
    assert out["exponents"] is None and out["exponents_notes"][0].endswith("(gaitpt: 5 distinct runs, 7 needed)")
    forced = run_cli("compare", "--store", store, "--law", "chinchilla", "--resamples", "50")
    assert forced.returncode == 2 and "needs at least 7 distinct runs" in forced.stderr


def test_backtest_default_law_is_one_the_runs_below_the_cutoff_carry(tmp_path):
    """Ten distinct runs carry chinchilla, but the six below the default cutoff do not: the default backtest says
    so and backtests power-compute instead; the ranking's failed row prints '-' (it used to crash the table)."""
    from test_laws_comparison import WIDTH_DOES_NOT_PAY

    metric = "synth-casiab.rank1_mean"
    rows = pd.DataFrame([dict(arch="gaitpt", params=p, samples=d, flops=c, seed=s, **{metric: m})
                         for p, d, c, s, m in WIDTH_DOES_NOT_PAY])
    store = tmp_path / "pt.duckdb"
    RunStore(store).import_runs(rows, "pt.csv")
    out = run_json("backtest", "--store", store, *FAST)
    assert out["law"] == out["selected"] == "power-compute" and out["n_fit"] + out["n_test"] == 12
    assert any("needs more runs below the cutoff" in w and "(6 distinct runs, 7 needed)" in w for w in out["warnings"])
    human = CliRunner().invoke(app, ["backtest", "--store", str(store), *FAST])
    assert human.exit_code == 0, human.output
    assert "chinchilla" in human.stderr and "inf%" not in human.stderr and "backtested power-compute" in human.stderr
    failed = [r for r in out["ranking"] if r["law"] == "chinchilla"]
    assert failed and "needs at least 7 distinct runs" in failed[0]["error"]

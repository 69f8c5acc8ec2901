"""What a metric is (loss, accuracy, error): inferred only from names that say it, else asked for and stored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import fit_law, prepare
from gaitforecast.metrics import kind_from_name
from gaitforecast.store import RunStore
from test_cli_runs import gaitforecast


@pytest.mark.parametrize("name, kind", [
    ("loss", "loss"), ("val_loss", "loss"), ("ssl_loss_heldout", "loss"), ("mape", "loss"), ("perplexity", "loss"),
    ("top1_err", "error"), ("wer", "error"), ("error_rate", "error"), ("eer", "error"),
    ("synth-casiab.rank1_mean", "accuracy"), ("mAP", "accuracy"), ("val_acc", "accuracy"), ("top1", "accuracy"),
    ("acc@1", "accuracy"), ("mINP", "accuracy"),
    ("score", None), ("x", None), ("y", None), ("f1", None),
])
def test_kind_from_name_only_when_the_name_says(name, kind):
    assert kind_from_name(name) == kind


def _table(metric: str, values: np.ndarray) -> pd.DataFrame:
    flops = np.logspace(12, 16, len(values))
    params = np.logspace(5, 7, len(values))
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(values))], "arch": "x", "params": params,
                         "samples": flops / (6 * params), "flops": flops, metric: values})


def test_a_metric_whose_name_does_not_say_is_not_guessed():
    runs = _table("score", np.linspace(0.2, 0.6, 12))
    with pytest.raises(GaitforecastError, match="pass --kind loss\\|accuracy\\|error"):
        prepare(runs, "score")
    acc = prepare(runs, "score", kind="accuracy")
    assert acc.kind == "accuracy" and acc.y == pytest.approx(-np.log(np.linspace(0.2, 0.6, 12)))
    err = prepare(runs, "score", kind="error")
    assert err.kind == "error" and not err.accuracy and err.y == pytest.approx(np.linspace(0.2, 0.6, 12))
    with pytest.raises(GaitforecastError, match="outside \\[0, 1\\]"):
        prepare(_table("score", np.linspace(2, 6, 12)), "score", kind="error")
    runs.attrs["metric_kinds"] = {"score": "accuracy"}  # what RunStore.runs() carries after import-runs --kind
    assert prepare(runs, "score").kind == "accuracy"


def test_an_error_rate_is_fitted_as_it_is_and_predicted_in_its_units():
    flops = np.logspace(12, 18, 20)
    err = 0.05 + 30 * flops ** -0.15
    runs = _table("top1_err", err)
    runs["flops"] = flops
    law = fit_law(runs, "top1_err", "power-compute")
    assert law.data.kind == "error" and law.fitted_as == "top1_err"
    assert law.params["k"] == pytest.approx(0.15, abs=0.01)
    assert law.predict(flops=[1e20])[0] == pytest.approx(0.05 + 30 * 1e20 ** -0.15, rel=0.02)


def test_import_runs_stores_kinds_and_leaves_out_columns_that_are_not_metrics(tmp_path):
    table = _table("score", np.linspace(0.2, 0.6, 12)).drop(columns=["id", "arch"])
    table["x"], table["y"] = np.arange(12), np.arange(12) * 2.0
    table["val_loss"] = np.linspace(3, 2, 12)
    csv = tmp_path / "runs.csv"
    table.to_csv(csv, index=False)
    store = tmp_path / "s.duckdb"
    res = gaitforecast("import-runs", str(csv), "--store", str(store), "--json", cwd=tmp_path)
    out = json.loads(res.stdout)
    assert out["metrics"] == ["val_loss"] and out["unknown_kind_columns"] == ["score", "x", "y"]
    assert out["kinds"] == {"val_loss": "loss"}
    res = gaitforecast("import-runs", str(csv), "--store", str(store), "--metric", "score", "--metric", "val_loss",
                       "--kind", "score=accuracy", "--json", cwd=tmp_path)
    assert json.loads(res.stdout)["kinds"] == {"score": "accuracy", "val_loss": "loss"}
    assert RunStore(store).metric_kinds() == {"score": "accuracy", "val_loss": "loss"}
    fit = gaitforecast("fit", "--store", str(store), "--metric", "score", "--law", "power-compute",
                       "--resamples", "50", "--json", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert json.loads(fit.stdout)["kind"] == "accuracy"
    # a stated kind the values contradict is refused, naming the rows, and nothing is imported
    table["score"] = np.linspace(20, 60, 12)
    table.to_csv(csv, index=False)
    res = gaitforecast("import-runs", str(csv), "--store", str(tmp_path / "t.duckdb"), "--metric", "score",
                       "--kind", "accuracy", cwd=tmp_path)
    assert res.returncode == 2 and "accuracy score is outside [0, 1]" in res.stderr.replace("\n", "")
    bad = gaitforecast("fit", "--store", str(store), "--metric", "score", "--kind", "ratio", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown metric kind 'ratio'" in bad.stderr


def test_checkpoints_of_one_run_are_resampled_together_and_warned_about(tmp_path):
    from gaitforecast.laws import bootstrap, diagnose
    from gaitforecast.laws.bootstrap import resample_weights

    rows = []
    for run, params in enumerate(np.logspace(5, 8, 8)):
        for samples in np.logspace(7, 9, 4):  # four checkpoints of each run
            rows.append({"run_name": f"r{run}", "params": params, "samples": samples,
                         "loss": 1.7 + 300 / params ** 0.34 + 400 / samples ** 0.28})
    csv = tmp_path / "ckpt.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    store = tmp_path / "s.duckdb"
    res = gaitforecast("import-runs", str(csv), "--store", str(store), "--run-column", "run_name", "--json",
                       cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["metrics"] == ["loss"]  # the run column is not a metric
    runs = RunStore(store).runs()
    data = prepare(runs, "loss")
    assert len(np.unique(data.groups)) == 8 and data.extra == {"checkpoint_runs": 8, "checkpoint_rows": 32}
    weights = resample_weights(data.groups, 50, 0)
    for g in range(8):  # every resample takes a run's four rows together or not at all
        assert (np.ptp(weights[:, data.groups == g], axis=1) == 0).all()
    law = fit_law(runs, "loss", "chinchilla")
    assert any("32 rows are checkpoints of 8 training runs" in w for w in diagnose(bootstrap(law, 50))["warnings"])
    bad = gaitforecast("import-runs", str(csv), "--store", str(store), "--run-column", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "--run-column 'nope' is not a column" in bad.stderr


def test_no_run_field_is_taken_for_a_metric(tmp_path):
    from gaitforecast.laws.data import NON_METRIC_COLUMNS
    from gaitforecast.record import RUN_FIELDS

    assert NON_METRIC_COLUMNS == set(RUN_FIELDS)  # `compiled` (a BOOLEAN) was once offered as a metric to fit
    store = tmp_path / "s.duckdb"
    RunStore(store).import_runs(pd.DataFrame({"params": [1e6, 2e6, 4e6, 8e6], "samples": [1e9] * 4,
                                              "loss": [3.1, 2.9, 2.8, 2.7]}), "t.csv")
    assert prepare(RunStore(store).runs(), None, ("params",)).metric == "loss"  # the one metric, no --metric

"""MLflow both ways against real local tracking stores (sqlite and file), through the CLI: `import-runs --mlflow`
reads finished runs under the file import's rules; `run-small --mlflow` logs each run as it finishes and never
loses one when the tracking store fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed: pip install 'gaitforecast[mlflow]'")
pytest.importorskip("sqlalchemy", reason="sqlite tracking stores need SQLAlchemy: pip install 'gaitforecast[mlflow]'")

from mlflow.tracking import MlflowClient  # noqa: E402

from gaitforecast.store import RunStore  # noqa: E402
from test_cli_runs import gaitforecast  # noqa: E402

TINY = """
[sweep]
name = "tiny-mlflow"
[data]
pool_sequences = 128
frames = 16
heldout_sequences = 16
[train]
samples = 64
batch_size = 32
eval_points = 1
eval_during = "main"
log_every = 1
precision = "fp32"
[[grid]]
arch = "gaitformer"
widths = {widths}
fractions = [1.0]
"""


@pytest.fixture(autouse=True)
def _file_stores_allowed(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it before opening a file store


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _uri(kind: str, folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}" if kind == "sqlite" else (folder / "mlruns").as_uri()


def _run(client: MlflowClient, exp: str, start: int, params: dict, metrics: dict, status: str = "FINISHED",
         tags: dict | None = None) -> str:
    run_id = client.create_run(exp, start_time=start, tags=tags or {}).info.run_id
    for key, value in params.items():
        client.log_param(run_id, key, value)
    for key, history in metrics.items():
        for step, value in history:
            client.log_metric(run_id, key, value, timestamp=start + step, step=step)
    if status != "RUNNING":
        client.set_terminated(run_id, status)
    return run_id


def _json(res: subprocess.CompletedProcess) -> dict:
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_import_reads_finished_runs_exactly_and_reimport_adds_only_new_runs(tmp_path, kind):
    uri = _uri(kind, tmp_path)
    client = MlflowClient(uri)
    exp = client.create_experiment("scaling")
    # a learning curve logged out of order: the latest value is the one at the highest step
    first = _run(client, exp, 1000, {"n_params": "1000000", "arch": "gpt", "seed": "3"},
                 {"tokens": [(0, 2e7)], "loss": [(20, 0.1 + 0.2), (0, 4.0), (10, 3.5)]}, tags={"team": "a"})
    _run(client, exp, 2000, {"n_params": "2e6"}, {"tokens": [(0, 4e7)], "loss": [(0, 2.9)], "val_acc": [(0, 0.41)]})
    twin_a = _run(client, exp, 3000, {"n_params": "4000000"}, {"tokens": [(0, 8e7)], "loss": [(0, 1 / 3)]})
    twin_b = _run(client, exp, 4000, {"n_params": "4000000"}, {"tokens": [(0, 8e7)], "loss": [(0, 1 / 3)]})
    _run(client, exp, 5000, {"n_params": "8e6"}, {"tokens": [(0, 1e8)]}, status="RUNNING")
    _run(client, exp, 6000, {"n_params": "8e6"}, {"tokens": [(0, 1e8)]}, status="FAILED")
    store = tmp_path / "s.duckdb"
    args = ("import-runs", "--mlflow", uri, "--experiment", "scaling", "--params-key", "n_params",
            "--samples-key", "metrics.tokens", "--store", str(store), "--json")

    summary = _json(gaitforecast(*args, cwd=tmp_path))
    assert summary["imported"] == 4 and summary["metrics"] == ["loss", "val_acc"]
    assert summary["not_finished"] == {"FAILED": 1, "RUNNING": 1}
    assert summary["kinds"] == {"loss": "loss", "val_acc": "accuracy"} and summary["ignored_columns"] == []
    assert summary["source"].startswith("import:mlflow:scaling@") and summary["flops_estimated"] is True
    records = {r["config"]["mlflow"]["run_id"]: r for r in RunStore(store).runs_records()}
    assert len(records) == 4  # the twins (equal figures) stay two runs: their MLflow ids join the run id
    one = records[first]
    assert (one["params"], one["samples"], one["flops"]) == (1e6, 2e7, 6 * 1e6 * 2e7)
    assert one["metrics"] == {"loss": 0.1 + 0.2} and one["arch"] == "gpt" and one["seed"] == 3
    assert one["config"]["mlflow"]["tags"] == {"team": "a"} and one["config"]["mlflow"]["params"]["n_params"] \
        == "1000000"
    assert one["config"]["columns"] == {"params": "params.n_params", "samples": "metrics.tokens",
                                        "arch": "params.arch", "seed": "params.seed",
                                        "wall_time_s": "end_time - start_time"}
    assert records[twin_a]["id"] != records[twin_b]["id"]
    assert records[twin_a]["metrics"] == records[twin_b]["metrics"] == {"loss": 1 / 3}
    ids = {r["id"] for r in records.values()}

    again = _json(gaitforecast(*args, cwd=tmp_path))
    assert again["imported"] == 4 and {r["id"] for r in RunStore(store).runs_records()} == ids

    _run(client, exp, 7000, {"n_params": "16e6"}, {"tokens": [(0, 2e8)], "loss": [(0, 2.2)]})
    _json(gaitforecast(*args, cwd=tmp_path))
    after = RunStore(store).runs_records()
    assert len(after) == 5 and ids < {r["id"] for r in after}


def test_import_refuses_bad_runs_all_or_nothing_naming_them(tmp_path):
    uri = _uri("sqlite", tmp_path)
    client = MlflowClient(uri)
    exp = client.create_experiment("bad")
    _run(client, exp, 1000, {"params": "1e6"}, {"samples": [(0, 1e7)], "loss": [(0, 3.0)]})
    not_number = _run(client, exp, 2000, {"params": "big"}, {"samples": [(0, 2e7)], "loss": [(0, 2.8)]})
    no_params = _run(client, exp, 3000, {}, {"samples": [(0, 4e7)], "loss": [(0, 2.6)]})
    store = tmp_path / "s.duckdb"

    res = gaitforecast("import-runs", "--mlflow", uri, "--experiment", "bad", "--store", str(store), cwd=tmp_path)
    text = " ".join(res.stderr.split())
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert (f"2 of 3 rows cannot be imported, nothing was imported: rows 2, 3 (row 2 ({not_number}): params is "
            f"not a number; row 3 ({no_params}): params is missing)") in text
    assert not store.exists()


def test_import_errors_name_what_is_wrong(tmp_path, monkeypatch):
    uri = _uri("sqlite", tmp_path)
    client = MlflowClient(uri)
    exp = client.create_experiment("runs")
    _run(client, exp, 1000, {"n": "1e6"}, {"tokens": [(0, 1e7)], "loss": [(0, 3.0)]})
    store = str(tmp_path / "s.duckdb")

    def refused(*args: str) -> str:
        res = gaitforecast("import-runs", *args, "--store", store, cwd=tmp_path)
        assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr, res.stderr
        return " ".join(res.stderr.split())

    assert "no MLflow experiment named 'nope'" in refused("--mlflow", uri, "--experiment", "nope")
    assert "experiments there: Default, runs" in refused("--mlflow", uri, "--experiment", "nope")
    missing_db = tmp_path / "other.db"
    assert f"no MLflow tracking store at {missing_db}" in refused("--mlflow", f"sqlite:///{missing_db}",
                                                                 "--experiment", "runs")
    assert not missing_db.exists()  # reading never creates a store
    text = refused("--mlflow", uri, "--experiment", "runs")
    assert "has a metric, param or tag named 'params' (the parameter count); pass --params-key NAME" in text
    assert "metrics: loss, tokens; params: n; tags: none" in text
    assert "named 'steps' (--samples-key)" in refused("--mlflow", uri, "--experiment", "runs", "--params-key", "n",
                                                       "--samples-key", "steps")
    assert "metric(s) acc not among the metrics" in refused("--mlflow", uri, "--experiment", "runs", "--params-key",
                                                             "n", "--samples-key", "tokens", "--metric", "acc")
    assert "--mlflow needs --experiment NAME" in refused("--mlflow", uri)
    assert "go with --mlflow" in refused(str(tmp_path / "t.csv"), "--experiment", "runs")
    assert "--run-column map a file's columns" in refused("--mlflow", uri, "--experiment", "runs", "--column",
                                                         "params=n")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    assert "pip install 'gaitforecast[mlflow]'" in refused("--mlflow", uri, "--experiment", "runs")
    assert not Path(store).exists()


def test_cli_start_imports_neither_mlflow_nor_submitit():
    probe = ("import sys, gaitforecast.cli; "
             "print([m for m in ('mlflow', 'submitit', 'sqlalchemy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def _logged(uri: str, experiment: str) -> dict[str, object]:
    """FINISHED MLflow runs of the experiment by their gaitforecast run id."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return {r.data.tags["gaitforecast.run_id"]: r for r in runs if r.info.status == "FINISHED"}


def _assert_logged_like_the_store(uri: str, run, store: RunStore, record: dict) -> None:
    """Params = config, latest metrics = final metrics, metric history = the learning curve, exactly."""
    client = MlflowClient(uri)
    config = record["config"]
    for key in ("arch", "width", "seed"):
        assert run.data.params[key] == str(config[key])
    assert run.data.params["train.batch_size"] == "32" and run.data.params["data.pool_sequences"] == "128"
    assert run.info.run_name == f"{config['arch']} w{config['width']} f1 s0"
    for name, value in record["metrics"].items():
        assert run.data.metrics[name] == value, name  # what MLflow shows as the run's value is the store's
    for name in ("params", "samples", "flops", "params_nonembed", "unique_sequences"):
        assert run.data.metrics[name] == record[name]
    curves = store.curves(record["id"])
    for name, curve in curves.groupby("name"):
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: (m.step, m.timestamp))
        points = list(zip(curve["step"], curve["value"]))
        extra = int(curve["value"].iloc[-1] != record["metrics"][name])  # train_loss: the final mean at the end
        assert len(history) == len(points) + extra, name
        assert [(m.step, m.value) for m in history[:len(points)]] == points
        if extra:
            assert (history[-1].step, history[-1].value) == (points[-1][0], record["metrics"][name])
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 3  # 2 steps logged + the final mean
    assert len(client.get_metric_history(run.info.run_id, "synth-casiab.rank1_mean")) == 2  # 2 eval points


@pytest.mark.slow
def test_run_small_logs_each_run_and_the_experiment_imports_back_exactly(tmp_path, cache):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY.format(widths="[16, 24]"))
    store_path, uri = tmp_path / "runs" / "s.duckdb", _uri("sqlite", tmp_path)
    sweep = ("run-small", "--spec", str(spec), "--store", str(store_path), "--cache-dir", str(cache), "--workers",
             "2", "--threads", "1", "--quiet", "--mlflow", uri)
    doc = _json(gaitforecast(*sweep, "--json", cwd=tmp_path))
    assert doc["done"] == 2 and doc["mlflow"]["logged"] == 2 and doc["mlflow"]["not_logged"] == 0
    store = RunStore(store_path)
    records = {r["id"]: r for r in store.runs_records("done")}
    logged = _logged(uri, "tiny-mlflow")  # the sweep's name is the default experiment
    assert set(logged) == set(records)
    for rid, run in logged.items():
        _assert_logged_like_the_store(uri, run, store, records[rid])

    imported_path = tmp_path / "imported.duckdb"
    back = ("import-runs", "--mlflow", uri, "--experiment", "tiny-mlflow", "--store", str(imported_path), "--json")
    summary = _json(gaitforecast(*back, cwd=tmp_path))
    assert summary["imported"] == 2
    assert summary["metrics"] == sorted({m for r in records.values() for m in r["metrics"]})
    imported = RunStore(imported_path).runs_records()
    for run in imported:
        original = records[run["config"]["mlflow"]["tags"]["gaitforecast.run_id"]]
        for key in ("params", "samples", "flops", "arch", "width", "seed", "params_nonembed", "unique_sequences",
                    "wall_time_s", "throughput", "threads", "dtype", "device", "host"):
            assert run[key] == original[key], key
        assert run["metrics"] == original["metrics"] and run["flops_estimated"] is False
    assert _json(gaitforecast(*back, cwd=tmp_path))["imported"] == 2 and len(RunStore(imported_path).runs()) == 2

    rerun = gaitforecast(*sweep, cwd=tmp_path)  # everything done: nothing trains, nothing is logged twice
    assert rerun.returncode == 0, rerun.stderr
    assert "MLflow: logged 0 run(s) to experiment 'tiny-mlflow'" in rerun.stderr
    assert "(2 were there already)" in rerun.stderr and len(_logged(uri, "tiny-mlflow")) == 2


@pytest.mark.slow
def test_a_failing_tracking_store_never_loses_runs_and_a_rerun_logs_them(tmp_path, cache):
    spec = tmp_path / "one.toml"
    spec.write_text(TINY.format(widths="[16]"))
    (tmp_path / "afile").write_text("a file where the tracking store's folder should be")
    broken = (tmp_path / "afile" / "mlruns").as_uri()
    store_path = tmp_path / "s.duckdb"
    sweep = ("run-small", "--spec", str(spec), "--store", str(store_path), "--cache-dir", str(cache), "--quiet")

    res = gaitforecast(*sweep, "--mlflow", broken, "--experiment", "e", "--json", cwd=tmp_path)
    doc = _json(res)  # exit 0: every run is done
    assert doc["done"] == 1 and doc["failed"] == 0
    said = " ".join(res.stderr.split())
    assert said.count("MLflow: logged 0 run(s) to experiment 'e'") == 1 and "1 not logged" in said
    assert "safe in the store; rerun the same command when the tracking store works" in said
    assert doc["mlflow"]["logged"] == 0 and doc["mlflow"]["not_logged"] == 1
    assert "Not a directory" in doc["mlflow"]["error"]
    store = RunStore(store_path)
    (record,) = store.runs_records()
    assert record["status"] == "done" and 0 <= record["metrics"]["synth-casiab.rank1_mean"] <= 1
    assert len(store.curves(record["id"])) > 0

    uri = _uri("sqlite", tmp_path)
    rerun = _json(gaitforecast(*sweep, "--mlflow", uri, "--experiment", "e", "--json", cwd=tmp_path))
    assert rerun["skipped"] == 1 and rerun["mlflow"]["logged"] == 1 and rerun["mlflow"]["error"] is None
    (run,) = _logged(uri, "e").values()
    _assert_logged_like_the_store(uri, run, store, record)


def test_run_small_refuses_an_experiment_without_mlflow(tmp_path):
    res = gaitforecast("run-small", "--profile", "quick", "--experiment", "e", "--store", str(tmp_path / "s.duckdb"),
                       cwd=tmp_path)
    assert res.returncode == 2 and "give --mlflow URI too" in res.stderr
    assert not (tmp_path / "s.duckdb").exists()

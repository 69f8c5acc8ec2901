"""One training run in-process, then `run-small` end to end on real subprocesses: resume, SIGKILL, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaitforecast.data.suites import SUITE_NAMES
from gaitforecast.models import config_for
from gaitforecast.models.flops import train_flops
from gaitforecast.store import RunStore
from gaitforecast.record import RunRecord
from gaitforecast.sweep.planner import plan
from gaitforecast.sweep.spec import validate
from gaitforecast.train.loop import eval_steps, lr_factor, train_run
from reliability_util import children

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from gaitforecast.cli import main; main()"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
RUN_FIELDS = ("id", "arch", "width", "seed", "params", "params_nonembed", "unique_sequences", "samples", "flops",
              "wall_time_s", "throughput", "dtype", "threads", "versions", "status", "source", "config")
# Four GaitFormer runs of a few seconds each: enough to stop a sweep between and inside runs.
TINY = """
[data]
pool_sequences = 256
frames = 16
heldout_sequences = 32
[train]
epochs = {epochs}
batch_size = 32
eval_points = 1
eval_during = "main"
log_every = 2
precision = "fp32"
[[grid]]
arch = "gaitformer"
widths = [16, 24]
fractions = [0.5, 1.0]
"""


def tiny_spec(tmp_path: Path, epochs: int = 3) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(epochs=epochs))
    return path


def cli(*args: str, timeout: float = 170) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_lr_schedule_and_eval_points():
    assert [round(lr_factor(s, 100, 0.1), 3) for s in (0, 4, 9, 10, 55, 100)] == [0.1, 0.5, 1.0, 1.0, 0.5, 0.0]
    assert eval_steps(100, 3) == [25, 50, 75, 100]
    assert eval_steps(2, 3) == [1, 2]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_train_run_returns_every_figure(cache):
    raw = {"data": {"pool_sequences": 128, "frames": 16, "heldout_sequences": 16},
           "train": {"samples": 192, "batch_size": 32, "eval_points": 1, "log_every": 2, "precision": "fp32",
                     "eval_during": "main"},
           "grid": [{"arch": "gaitformer", "widths": [16], "fractions": [0.5]}]}
    run = plan(validate(raw))[0]
    events = []
    res = train_run(run.config, cache, threads=1, want_baseline=True, progress=events.append)
    m = res.measured  # only what training measures; the id and sizes are the planner's
    assert set(m) == set(RunRecord.MEASURED)
    assert m["dtype"] == "float32" and m["threads"] == 1 and m["throughput"] > 0 and m["wall_time_s"] > 0
    assert "torch" in m["versions"]
    r = run.record().finished(m, res.metrics, res.curves).to_row()
    assert r["id"] == run.id and r["status"] == "done" and r["config"] == run.config
    assert (r["unique_sequences"], r["samples"]) == (56, 192)  # 0.5 x (128 - 16); 6 steps of 32
    assert r["flops"] == train_flops(config_for("gaitformer", 16, frames=16), 192) and r["params"] == run.params
    for suite in SUITE_NAMES:
        main = f"{suite}.rank1_mean" if suite == "synth-casiab" else f"{suite}.rank1"
        assert 0 <= res.metrics[main] <= 1
        assert any(k.startswith(suite + ".") for k in res.baseline["metrics"])
    assert res.metrics["ssl_loss_heldout"] > 0 and res.metrics["train_loss"] > 0
    names = {(c["step"], c["name"]) for c in res.curves}
    assert {(s, "train_loss") for s in (2, 4, 6)} <= names
    assert (3, "synth-casiab.rank1_mean") in names and (3, "ssl_loss_heldout") in names
    assert (6, "synth-gait3d.mAP") in names and (3, "synth-gait3d.mAP") not in names  # main suite only mid-run
    assert all(c["samples_seen"] == 32 * c["step"] for c in res.curves)
    assert [e["step"] for e in events if e["phase"] == "train"] == [2, 3, 4, 6]
    again = train_run(run.config, cache, threads=1)
    assert again.metrics == res.metrics  # same config, same process and threads: identical figures


@pytest.mark.slow
def test_run_small_quick_end_to_end_then_skips_everything(tmp_path):
    store = tmp_path / "s.duckdb"
    t0 = time.perf_counter()
    first = cli("run-small", "--profile", "quick", "--store", str(store), "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    doc = json.loads(first.stdout)
    assert doc["done"] == doc["planned"] >= 4 and doc["skipped"] == 0 and doc["failed"] == 0
    assert time.perf_counter() - t0 < 170
    runs = cli("runs", "--store", str(store), "--json")
    assert runs.returncode == 0, runs.stderr[-2000:]
    listed = json.loads(runs.stdout)
    records = listed["runs"] if isinstance(listed, dict) else listed
    assert len(records) == doc["planned"]
    for rec in records:
        assert rec["status"] == "done" and rec["source"] == "gaitforecast"
        for field in RUN_FIELDS:
            assert rec.get(field) is not None, field
        assert 0 <= rec["metrics"]["synth-casiab.rank1_mean"] <= 1 and rec["metrics"]["ssl_loss_heldout"] > 0
    rs = RunStore(store)
    assert len(rs.artifacts("random_init")) == len({(r["arch"], r["width"]) for r in records})
    assert set(rs.curves()["name"]) >= {"train_loss", "ssl_loss_heldout", "synth-casiab.rank1_mean"}
    second = cli("run-small", "--profile", "quick", "--store", str(store), "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    again = json.loads(second.stdout)
    assert again["skipped"] == doc["planned"] and again["done"] == 0
    assert "already done" in second.stderr


def _wait_for(predicate, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def _statuses(store: Path) -> dict[str, str]:
    if not store.exists():
        return {}
    try:
        return dict(RunStore(store).runs()[["id", "status"]].itertuples(index=False))
    except Exception:  # the store is being created
        return {}


def _start(spec: Path, store: Path) -> subprocess.Popen:
    # SIGINT back to its default in the driver: a pytest started in the background of a non-interactive shell
    # inherits SIGINT ignored, and a Python started with SIGINT ignored never raises KeyboardInterrupt.
    return subprocess.Popen([*CLI, "run-small", "--spec", str(spec), "--store", str(store), "--workers", "1",
                             "--json"], cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_resume_after_driver_killed_with_sigkill(tmp_path):
    spec, store = tiny_spec(tmp_path), tmp_path / "s.duckdb"
    proc = _start(spec, store)
    _wait_for(lambda: "done" in _statuses(store).values() and "running" in _statuses(store).values())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = RunStore(store)
    done_before = before.runs(status="done").set_index("id")
    assert len(done_before) >= 1 and "running" in _statuses(store).values()
    _wait_for(lambda: not children(proc.pid, b"spawn_main") and not any(  # orphaned workers notice and exit
        b"spawn_main" in (p / "cmdline").read_bytes() and str(tmp_path).encode() in (p / "environ").read_bytes()
        for p in Path("/proc").iterdir() if p.name.isdigit() and (p / "cmdline").exists()), timeout=30)
    resumed = cli("run-small", "--spec", str(spec), "--store", str(store), "--workers", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    doc = json.loads(resumed.stdout)
    assert doc["skipped"] == len(done_before) and doc["done"] == 4 - len(done_before)
    assert len(doc["stale_marked_interrupted"]) == 1
    after = RunStore(store).runs().set_index("id")
    assert len(after) == 4 and set(after["status"]) == {"done"}
    for rid, row in done_before.iterrows():  # finished runs untouched: same figures, same timestamps
        assert after.loc[rid, "updated_at"] == row["updated_at"]
        assert after.loc[rid, "synth-casiab.rank1_mean"] == row["synth-casiab.rank1_mean"]


@pytest.mark.slow
def test_killed_worker_and_ctrl_c_mark_runs_interrupted(tmp_path):
    spec, store = tiny_spec(tmp_path, epochs=6), tmp_path / "s.duckdb"
    proc = _start(spec, store)
    # Kill the worker while it is busy with the first (largest, ~6 s) run: a worker killed between runs is
    # replaced without any run being lost (tests/test_sweep.py), which is not what this test is about.
    _wait_for(lambda: "running" in _statuses(store).values())
    workers = _wait_for(lambda: children(proc.pid, b"spawn_main"))
    time.sleep(1.0)
    assert not [s for s in _statuses(store).values() if s == "done"]
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=150)
    assert proc.returncode == 1, err[-3000:]  # some run was interrupted
    doc = json.loads(out)
    assert doc["interrupted"] == 1 and doc["done"] + doc["interrupted"] == 4
    assert sorted(_statuses(store).values()) == ["done"] * 3 + ["interrupted"]
    assert "worker process died" in RunStore(store).runs(status="interrupted")["error"].iloc[0]
    # Ctrl-C: the driver stops the workers, marks the run in flight interrupted, keeps the rest, exits 130.
    proc = _start(spec, store)
    _wait_for(lambda: "running" in _statuses(store).values())
    # The worker is spawned after the run is marked running; it imports torch (~1-2 s) before the run's ~3 s of
    # training, so a signal shortly after the worker appears lands while the run is in flight on a quiet machine
    # too (a fixed 1 s after "running" once missed it: the run had finished).
    _wait_for(lambda: children(proc.pid, b"spawn_main"))
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "Rerun the same command to resume" in err
    assert sorted(_statuses(store).values()) == ["done"] * 3 + ["interrupted"]
    final = cli("run-small", "--spec", str(spec), "--store", str(store), "--workers", "1", "--json")
    assert final.returncode == 0 and json.loads(final.stdout)["done"] == 1

"""The DuckDB run store on real files and real processes: round trips, schema versions, refusals, locking."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.store import SCHEMA_VERSION, RunStore, run_id
from gaitforecast.store.schema import create_schema

REPO = Path(__file__).resolve().parents[1]
CONTRACT_COLUMNS = [
    "id", "arch", "width", "seed", "params", "params_nonembed", "unique_sequences", "samples", "flops",
    "wall_time_s", "throughput", "dtype", "threads", "versions", "git_sha", "status", "source", "config",
    "created_at", "updated_at", "flops_estimated",
]


def _run(i: int = 0, **extra):
    config = {"arch": "gaitpt", "width": 8 * (i + 1), "seed": 0, "fraction": 0.5}
    return {"config": config, "arch": "gaitpt", "width": 8 * (i + 1), "seed": 0, "params": 1000.0 * (i + 1),
            "params_nonembed": 900.0 * (i + 1), "unique_sequences": 512, "samples": 4096, "flops": 1.5e12,
            "wall_time_s": 12.5, "throughput": 327.7, "dtype": "float32", "threads": 1,
            "versions": {"torch": "2.13.0"}, "git_sha": "abc123", **extra}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def test_run_id_is_canonical_sha256_prefix():
    a = run_id({"width": 8, "arch": "gaitpt", "lr": 0.001})
    assert a == run_id({"arch": "gaitpt", "lr": 0.001, "width": 8})
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != run_id({"width": 16, "arch": "gaitpt", "lr": 0.001})
    expected = hashlib.sha256(b'{"arch":"gaitpt","lr":0.001,"width":8}').hexdigest()[:16]
    assert a == expected


def test_round_trip_of_run_metrics_curves_and_artifacts(tmp_path):
    store = RunStore(tmp_path / "s.duckdb")
    curve = [{"step": s, "samples_seen": 64 * s, "flops": 1e9 * s, "name": "ssl_loss", "value": 5.0 / s}
             for s in (1, 2, 4)]
    with store.writer() as w:
        rid = w.upsert_run(_run(0, metrics={"synth-casiab.rank1_mean": 0.42, "loss": 2.5}, curve=curve))
        w.set_status(rid, "done")
        w.upsert_run(_run(1, status="running"))
        key = w.put_artifact("random_init", {"arch": "gaitpt", "width": 8, "rank1": 0.05}, key="gaitpt:8")
    assert rid == run_id(_run(0)["config"])
    runs = store.runs()
    assert list(runs.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    assert {"synth-casiab.rank1_mean", "loss"} <= set(runs.columns)
    row = runs.set_index("id").loc[rid]
    assert (row["params"], row["samples"], row["flops"], row["threads"]) == (1000.0, 4096.0, 1.5e12, 1)
    assert row["synth-casiab.rank1_mean"] == pytest.approx(0.42) and row["status"] == "done"
    assert row["source"] == "gaitforecast" and not row["flops_estimated"]
    assert store.done_ids() == {rid}
    assert len(store.runs(status="running")) == 1
    assert store.metric_names() == ["loss", "synth-casiab.rank1_mean"]
    record = next(r for r in store.runs_records() if r["id"] == rid)
    assert record["metrics"] == {"loss": 2.5, "synth-casiab.rank1_mean": 0.42}
    assert record["config"] == _run(0)["config"] and record["versions"] == {"torch": "2.13.0"}
    c = store.curves(rid)
    assert c["step"].tolist() == [1, 2, 4] and c["value"].tolist() == pytest.approx([5.0, 2.5, 1.25])
    assert store.artifacts("random_init")[0]["payload"]["rank1"] == 0.05 and key == "gaitpt:8"


def test_upsert_is_idempotent_and_updates_in_place(tmp_path):
    store = RunStore(tmp_path / "s.duckdb")
    with store.writer() as w:
        for _ in range(3):
            w.upsert_run(_run(0, metrics={"loss": 3.0}))
        created = store.runs()["created_at"].iloc[0]
        w.upsert_run(_run(0, status="done", wall_time_s=99.0, metrics={"loss": 2.0}))
        w.put_artifact("mup_check", {"a": 1})
        w.put_artifact("mup_check", {"a": 1})
    runs = store.runs()
    assert len(runs) == 1 and runs["loss"].iloc[0] == 2.0 and runs["wall_time_s"].iloc[0] == 99.0
    assert runs["created_at"].iloc[0] == created and runs["updated_at"].iloc[0] > created
    assert len(store.artifacts("mup_check")) == 1


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = RunStore(tmp_path / "s.duckdb")
    with store.writer() as w:
        with pytest.raises(GaitforecastError, match="curve row 1 lacks value"):
            w.upsert_run(_run(0, curve=[{"step": 1, "samples_seen": 1, "flops": 1, "name": "l", "value": 1},
                                        {"step": 2, "samples_seen": 2, "flops": 2, "name": "l"}]))
        with pytest.raises(GaitforecastError, match="status 'finished' is not allowed"):
            w.write_runs([_run(1, status="done"), _run(2, status="finished")])
        with pytest.raises(GaitforecastError, match="unknown run field.*lossy"):
            w.upsert_run(_run(3, lossy=1.0))
        with pytest.raises(GaitforecastError, match="no run with id"):
            w.add_metrics("0123456789abcdef", {"loss": 1.0})
    assert len(store.runs()) == 0


def test_writes_need_the_writer_lock_and_interrupted_runs_are_marked(tmp_path):
    store = RunStore(tmp_path / "s.duckdb")
    with store.writer() as w:
        ids = [w.upsert_run(_run(i)) for i in range(3)]
        w.set_status(ids[0], "done")
    with pytest.raises(GaitforecastError, match="writer lock"):
        w.set_status(ids[1], "done")  # the handle is dead once its block ended
    with store.writer() as w:
        assert w.mark_running_as_interrupted() == sorted(ids[1:])
    assert sorted(store.runs(status="interrupted")["id"]) == sorted(ids[1:])


def test_older_schema_is_upgraded_with_a_backup(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    create_schema(con, version=1)
    con.execute("INSERT INTO runs (id, arch, params, samples, flops, status, source, config) "
                "VALUES ('r1', 'gaitpt', 10, 20, 1200, 'done', 'gaitforecast', '{}')")
    con.close()
    original = _digest(path)
    store = RunStore(path)
    runs = store.runs()  # reading an old store upgrades it
    assert runs["id"].tolist() == ["r1"] and runs["flops_estimated"].tolist() == [False]
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    con.close()
    assert _digest(Path(f"{path}.v1.bak")) == original
    with store.writer() as w:
        w.put_artifact("mup_check", {"ok": True})  # the table v2 added
    assert store.artifacts("mup_check")[0]["payload"] == {"ok": True}


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "new.duckdb"
    with RunStore(path).writer():
        pass
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    before = _digest(path)
    with pytest.raises(GaitforecastError, match="newer than this gaitforecast"):
        RunStore(path).runs()
    with pytest.raises(GaitforecastError, match="Upgrade gaitforecast"):
        with RunStore(path).writer():
            pass
    assert _digest(path) == before


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "foreign"])
def test_a_file_that_is_not_a_store_is_refused_and_never_changed(tmp_path, kind):
    path = tmp_path / "x.duckdb"
    if kind == "garbage":
        path.write_bytes(b"name,loss\nrun1,0.5\n" * 100)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        good = tmp_path / "good.duckdb"
        with RunStore(good).writer() as w:
            w.upsert_run(_run(0))
        path.write_bytes(good.read_bytes()[:6000])
    else:
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE meta AS SELECT 'app' AS key, 'other' AS value")
        con.close()
    before = _digest(path)
    message = "not a gaitforecast run store|damaged or truncated"
    with pytest.raises(GaitforecastError, match=message):
        RunStore(path).runs()
    with pytest.raises(GaitforecastError, match=message):
        with RunStore(path).writer() as w:
            w.upsert_run(_run(0))
    assert _digest(path) == before
    assert not Path(f"{path}.wal").exists()


def test_missing_store_and_unwritable_location_give_clear_errors(tmp_path):
    with pytest.raises(GaitforecastError, match="no run store at .*gaitforecast run-small.*import-runs"):
        RunStore(tmp_path / "none.duckdb").runs()
    with pytest.raises(GaitforecastError, match="Choose a writable --store"):
        with RunStore("/proc/gaitforecast-test/s.duckdb").writer():
            pass


HOLD_WRITER = """
    import sys, time
    from gaitforecast.store import RunStore
    with RunStore(sys.argv[1]).writer():
        print("ready", flush=True)
        time.sleep(float(sys.argv[2]))
"""


def test_second_writer_waits_with_a_message_then_names_the_holder(tmp_path):
    path = tmp_path / "s.duckdb"
    with RunStore(path).writer() as w:
        w.upsert_run(_run(0))
    holder = _spawn(HOLD_WRITER, str(path), "20")
    try:
        messages: list[str] = []
        start = time.monotonic()
        with pytest.raises(GaitforecastError) as err:
            with RunStore(path).writer(timeout=1.0, on_wait=messages.append):
                pass
        waited = time.monotonic() - start
        assert 1.0 <= waited < 10
        assert len(messages) == 1 and "waiting up to 1 s" in messages[0] and f"PID {holder.pid}" in messages[0]
        assert f"PID {holder.pid}" in str(err.value) and f"{path}.lock" in str(err.value)
        # Readers are not blocked by the writer lock at all.
        reader = RunStore(path)
        assert len(reader.runs()) == 1 and reader.stats["snapshot_reads"] == 0
    finally:
        holder.kill()
        holder.wait()
    with RunStore(path).writer(timeout=5) as w:  # a killed holder releases the lock
        w.upsert_run(_run(1))
    assert len(RunStore(path).runs()) == 2


HOLD_FILE = """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    con.execute("SELECT 1").fetchall()
    print("ready", flush=True)
    time.sleep(float(sys.argv[3]))
    con.close()
"""


def test_reader_falls_back_to_a_snapshot_while_another_process_holds_the_file(tmp_path):
    path = tmp_path / "s.duckdb"
    with RunStore(path).writer() as w:
        w.upsert_run(_run(0, metrics={"loss": 1.25}))
    holder = _spawn(HOLD_FILE, str(path), "rw", "20")
    try:
        store = RunStore(path, read_wait_s=0.2)
        runs = store.runs()
        assert runs["loss"].tolist() == [1.25] and store.stats["snapshot_reads"] == 1
    finally:
        holder.kill()
        holder.wait()


def test_writer_waits_out_a_reader_instead_of_failing(tmp_path):
    path = tmp_path / "s.duckdb"
    with RunStore(path).writer() as w:
        w.upsert_run(_run(0))
    reader = _spawn(HOLD_FILE, str(path), "ro", "1.5")
    store = RunStore(path)
    with store.writer() as w:
        w.upsert_run(_run(1))
    reader.wait()
    assert store.stats["write_retries"] > 0 and len(store.runs()) == 2


def test_readers_step_aside_for_a_waiting_writer(tmp_path):
    path = tmp_path / "s.duckdb"
    with RunStore(path).writer() as w:
        w.upsert_run(_run(0))
    store = RunStore(path, read_wait_s=0.1)
    store.pending_path.touch()  # what a writer does while a reader keeps it out
    assert len(store.runs()) == 1 and store.stats["snapshot_reads"] == 1
    os.utime(store.pending_path, (time.time() - 120, time.time() - 120))  # left by a writer that died
    assert len(store.runs()) == 1 and store.stats["snapshot_reads"] == 1
    with store.writer() as w:
        w.upsert_run(_run(1))
    assert len(store.runs()) == 2


SWEEP = """
    import sys
    from gaitforecast.store import RunStore
    print("ready", flush=True)
    with RunStore(sys.argv[1]).writer() as w:
        for i in range(int(sys.argv[2])):
            w.upsert_run({"config": {"i": i}, "params": 1e6 + i, "samples": 1e5, "status": "done",
                          "metrics": {"loss": 1.0 / (i + 1)}})
"""


def test_dashboard_style_reads_during_a_sweep_never_fail_either_side(tmp_path):
    path = tmp_path / "s.duckdb"
    with RunStore(path).writer():
        pass
    sweep = _spawn(SWEEP, str(path), "15")
    store = RunStore(path)
    counts = []
    while sweep.poll() is None:
        counts.append(len(store.runs()))
    assert sweep.wait() == 0, sweep.stderr.read()
    assert counts == sorted(counts) and len(counts) >= 3
    final = store.runs()
    assert len(final) == 15 and final["id"].is_unique and final["loss"].min() == pytest.approx(1 / 15)


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 3 MiB tmpfs (needs root with mount rights; skipped elsewhere)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(mount_point)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with mount rights)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_full_disk_and_read_only_location_give_clear_errors_and_keep_the_store(tiny_disk):
    store = RunStore(tiny_disk / "s.duckdb")
    with store.writer() as w:
        w.upsert_run(_run(0, status="done", metrics={"loss": 2.0}))
    filler = _fill(tiny_disk)
    before = _digest(store.path)
    big_curve = [{"step": k, "samples_seen": k, "flops": k, "name": "loss", "value": 1.0} for k in range(2000)]
    with pytest.raises(GaitforecastError, match="disk full .* rolled back"):
        with store.writer() as w:
            for i in range(1, 40):
                w.upsert_run(_run(i, curve=big_curve))
    assert _digest(store.path) == before and store.runs()["loss"].tolist() == [2.0]
    filler.unlink()
    with store.writer() as w:  # space again: the store works and holds only whole writes
        w.upsert_run(_run(1))
    assert len(store.runs()) == 2
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    assert len(RunStore(store.path).runs()) == 2  # reading needs no write access
    with pytest.raises(GaitforecastError, match="Read-only file system.*writable --store"):
        with store.writer() as w:
            w.upsert_run(_run(2))

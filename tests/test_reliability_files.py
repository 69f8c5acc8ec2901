"""Bad store files and hostile locations through the real `gaitforecast` command line (tests/test_store.py covers
the same faults on the library): every command refuses with exit 2 and one clear line, and the file is untouched.

Faults: garbage bytes, an empty file, a store truncated in its header or its data, a DuckDB database of another
program, a store of a newer schema version; a read-only location (a read-only bind mount: we run as root, so
permissions alone would not stop us); a disk that fills up in the middle of a sweep (a 12 MiB tmpfs, filled once a
run trains); a file size limit (`ulimit -f`) on the sweep driver, which needs no root. Tests needing mount rights skip
where they are missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from gaitforecast.store import SCHEMA_VERSION, RunStore
from reliability_util import (
    assert_done_runs_whole, cli, fingerprint, shared_cache, start, statuses, sweep_args, wait_for, write_spec,
)
from test_store import _digest, _fill, _run

__all__ = ["shared_cache"]  # the fixture, imported for pytest

KIND_MESSAGE = {
    "garbage": "not a gaitforecast run store",
    "empty": "not a gaitforecast run store|damaged or truncated",
    "truncated-header": "not a gaitforecast run store|damaged or truncated",
    "truncated-data": "damaged or truncated",
    "foreign": "DuckDB database but not a gaitforecast run store",
    "newer": f"schema version {SCHEMA_VERSION + 1}, newer than this gaitforecast",
}


def _good_store(path: Path, n: int = 6) -> Path:
    with RunStore(path).writer() as w:
        for i in range(n):
            w.upsert_run(_run(i, status="done", metrics={"loss": 3.0 / (i + 1)},
                              curve=[{"step": s, "samples_seen": s, "flops": s, "name": "loss", "value": 1.0 / s}
                                     for s in range(1, 200)]))
    return path


def _bad_store(folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.duckdb"
    if kind == "garbage":
        path.write_bytes(os.urandom(300_000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind.startswith("truncated"):
        good = _good_store(folder / "good.duckdb").read_bytes()
        path.write_bytes(good[:4096 * 3] if kind == "truncated-header" else good[: len(good) // 2])
    elif kind == "foreign":
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE runs AS SELECT 1 AS id, 'x' AS arch")
        con.close()
    else:
        _good_store(path)
        con = duckdb.connect(str(path))
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
        con.close()
    return path


def _refused(res: subprocess.CompletedProcess, pattern: str) -> str:
    err = res.stderr.strip()
    assert res.returncode == 2, (res.returncode, err[-2000:])
    assert "Traceback" not in err and err.startswith("error:"), err[-2000:]
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err  # one line, no traceback
    assert pd.Series([err]).str.contains(pattern, regex=True).iloc[0], err
    return err


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("table") / "external.csv"
    pd.DataFrame({"params": [1e6, 2e6, 4e6, 8e6, 1.6e7], "samples": [1e8] * 5,
                  "loss": [3.0, 2.8, 2.6, 2.5, 2.45]}).to_csv(path, index=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KIND_MESSAGE))
def test_every_command_refuses_a_bad_store_and_leaves_it_byte_identical(tmp_path, kind, table, shared_cache):
    path = _bad_store(tmp_path, kind)
    before = _digest(path)
    spec = write_spec(tmp_path)
    readers = [["runs", "--json"], ["fit", "--metric", "loss", "--json"], ["export", str(tmp_path / "out.csv")]]
    writers = [sweep_args(spec, path, shared_cache), ["import-runs", str(table)]]
    i = list(KIND_MESSAGE).index(kind)  # every kind through one reading and one writing command, all commands
    commands = readers + writers if kind == "garbage" else [readers[i % 3], writers[i % 2]]  # used across kinds
    for command in commands:
        args = command if command[0] == "run-small" else [*command, "--store", str(path)]
        err = _refused(cli(*args, cores=None), KIND_MESSAGE[kind])
        assert str(path) in err.replace("\n", "")
        assert _digest(path) == before, f"`{command[0]}` changed the {kind} file"
    assert not (tmp_path / "out.csv").exists()
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(path.name) and p != path)
    assert set(leftovers) <= {f"{path.name}.lock"}, leftovers  # no .wal, no half-created store, no owner file


@pytest.fixture()
def read_only_dir(tmp_path):
    """`tmp_path/rw` bind-mounted read-only at `tmp_path/ro` (needs mount rights; skipped elsewhere)."""
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    if subprocess.run(["mount", "--bind", str(rw), str(ro)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root with mount rights)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield rw, ro
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_read_only_location_reads_work_and_writes_refuse_cleanly(read_only_dir, table, tmp_path):
    rw, ro = read_only_dir
    _good_store(rw / "s.duckdb", n=3)
    path = ro / "s.duckdb"
    before, files = _digest(path), sorted(p.name for p in rw.iterdir())
    listed = cli("runs", "--store", str(path), "--json", cores=None)  # reading needs no write access
    assert listed.returncode == 0, listed.stderr[-2000:]
    doc = json.loads(listed.stdout)
    assert len(doc["runs"] if isinstance(doc, dict) else doc) == 3
    for args in (["import-runs", str(table), "--store", str(path)],
                 ["import-runs", str(table), "--store", str(ro / "new.duckdb")]):
        _refused(cli(*args, cores=None), r"read-only|Read-only file system")
    _refused(cli("export", str(ro / "out.parquet"), "--store", str(tmp_path / "rw" / "s.duckdb"), cores=None),
             r"cannot write .*out\.parquet.*writable path")
    assert _digest(path) == before
    assert sorted(p.name for p in rw.iterdir()) == files  # nothing created: no store, no lock, no export


@pytest.fixture()
def small_disk(tmp_path):
    """A 12 MiB tmpfs: room for the 3-run store (~4 MiB, DuckDB grows in 256 KiB blocks) once the filler is gone."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12M", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with mount rights)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
def test_disk_fills_up_in_the_middle_of_a_sweep(small_disk, tmp_path, shared_cache):
    disk = small_disk
    spec, store = write_spec(tmp_path), disk / "s.duckdb"
    sweep = start(*sweep_args(spec, store, shared_cache))
    # Once a run is done and the next one trains, take the rest of the disk.
    wait_for(lambda: sorted(statuses(store).values()) == ["done", "running"], proc=sweep, every=0.02)
    filler = _fill(disk)
    done_before = fingerprint(store)
    before = _digest(store)
    _, err = sweep.communicate(timeout=240)
    assert sweep.returncode == 2, err[-3000:]
    assert "disk full" in err and "rolled back" in err and "Traceback" not in err, err[-3000:]
    assert _digest(store) == before  # the failed write left the file as it was
    after = fingerprint(store)
    assert after == done_before and len(after) == 1  # the finished run is intact, the one in flight is not done
    assert_done_runs_whole(after)
    _refused(cli("export", str(disk / "out.parquet"), "--store", str(store), cores=None), "No space left")
    assert sorted(p.name for p in disk.iterdir() if "out.parquet" in p.name) == []  # no partial export
    filler.unlink()
    res = cli(*sweep_args(spec, store, shared_cache, "--json"))
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert doc["skipped"] == 1 and doc["done"] == 2
    final = fingerprint(store)
    assert set(statuses(store).values()) == {"done"} and len(final) == 3
    assert all(final[rid] == figures for rid, figures in done_before.items())


@pytest.mark.slow
def test_file_size_limit_on_the_sweep_driver(tmp_path, shared_cache):
    """The same fault without root: the driver runs under `ulimit -f` (RLIMIT_FSIZE) of 4 KiB. DuckDB's checkpoint on
    close then fails silently (writes stay in the WAL, which reads replay), until the COMMIT of a finished run would
    grow the WAL past the limit: that write fails after training, is rolled back and reported clearly."""
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path, fractions=(0.5, 1.0))
    res = cli(*sweep_args(write_spec(tmp_path, "one", fractions=(1.0,)), store, shared_cache))
    assert res.returncode == 0, res.stderr[-3000:]
    done_before = fingerprint(store)
    sweep = start(*sweep_args(spec, store, shared_cache), max_file_bytes=4096)
    _, err = sweep.communicate(timeout=240)
    assert sweep.returncode == 2, err[-3000:]
    assert "file size limit reached" in err and "ulimit -f" in err and "Traceback" not in err, err[-3000:]
    after = fingerprint(store)  # the store opens (the WAL is replayed); the finished run is whole and unchanged
    assert after == done_before
    res = cli(*sweep_args(spec, store, shared_cache, "--json"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["skipped"] == 1
    final = fingerprint(store)
    assert set(statuses(store).values()) == {"done"} and len(final) == 2
    assert_done_runs_whole(final)
    assert all(final[rid] == figures for rid, figures in done_before.items())

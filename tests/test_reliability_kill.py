"""SIGKILL the `run-small` driver (real processes, a real DuckDB store) and resume: nothing finished is ever lost.

Two tests: kills at the two exact points of a store write that matter (inside the transaction that records a
finished run, and after its COMMIT but before the checkpoint), reached deterministically by a driver that pauses
there (tests/reliability_util.py FAULTY_CLI); then kills at seeded random points (start-up, data loading, training,
writing) several times in a row. After every kill: the store opens, ids are unique, every run the driver had
reported done is there with identical figures, and a done run always has all its figures; the final re-run
completes the sweep.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pandas as pd
import pytest

from gaitforecast.store import RunStore
from reliability_util import (
    assert_done_runs_whole, cli, fingerprint, gone, planned, reported_done, shared_cache, sigkill, start, statuses,
    sweep_args, wait_for, write_spec,
)

__all__ = ["shared_cache"]  # the fixture, imported for pytest


def _check(store: Path, history: dict, reported: set[str], ids: set[str]) -> dict:
    """The invariants after a kill; returns the fingerprints of the done runs (added to `history`)."""
    if not store.exists():
        assert not reported, "runs were reported done but no store exists"
        return {}
    prints = fingerprint(store)
    assert set(statuses(store)) <= ids, "the store holds runs the spec does not plan"
    assert_done_runs_whole(prints)
    for rid, figures in history.items():
        assert prints.get(rid) == figures, f"finished run {rid} changed or vanished after a kill"
    assert reported <= set(prints), f"runs reported done are missing: {reported - set(prints)}"
    history.update(prints)
    return prints


@pytest.mark.slow
def test_kill_inside_and_right_after_the_write_of_a_finished_run(tmp_path, shared_cache):
    spec, store = write_spec(tmp_path), tmp_path / "s.duckdb"
    labels = planned(spec)
    ids = set(labels.values())
    marker = tmp_path / "paused"

    # 1. Paused inside the transaction writing the 2nd finished run (its rows written, COMMIT not run): SIGKILL.
    proc = start(*sweep_args(spec, store, shared_cache), fault={
        "GF_FAULT": "in_txn", "GF_FAULT_AT": "2", "GF_FAULT_MARKER": str(marker)})
    rid = wait_for(lambda: marker.exists() and marker.read_text(), proc=proc)
    err, orphans = sigkill(proc)
    reported = {labels[x] for x in reported_done(err)}
    history: dict = {}
    prints = _check(store, history, reported, ids)
    assert len(prints) == 1 and len(reported) == 1  # the first run finished and was reported
    assert statuses(store)[rid] == "running"  # the half-written result was rolled back: not done, no figures
    assert RunStore(store).curves(rid).empty
    assert pd.isna(RunStore(store).runs().set_index("id").loc[rid, "synth-casiab.rank1_mean"])
    wait_for(lambda: gone(orphans), timeout=30)  # the orphaned worker noticed its driver died and exited

    # 2. The re-run marks that run interrupted and redoes it; paused after the COMMIT of its result, before the
    #    connection closes (the result is only in the WAL): SIGKILL. The run counts as finished.
    marker.unlink()
    proc = start(*sweep_args(spec, store, shared_cache), fault={
        "GF_FAULT": "after_commit", "GF_FAULT_AT": "1", "GF_FAULT_MARKER": str(marker)})
    rid2 = wait_for(lambda: marker.exists() and marker.read_text(), proc=proc)
    err, orphans = sigkill(proc)
    assert rid2 == rid and "1 run(s) left 'running'" in err
    assert Path(f"{store}.wal").exists()  # the kill really landed between COMMIT and checkpoint
    prints = _check(store, history, {labels[x] for x in reported_done(err)}, ids)
    assert set(prints) == set(history) and rid in prints and len(prints) == 2
    snap = RunStore(store, read_wait_s=0.0)
    snap.pending_path.touch()  # what a waiting writer leaves: readers copy the file (a snapshot) instead
    try:
        assert dict(snap.runs()[["id", "status"]].itertuples(index=False))[rid] == "done"
        assert snap.stats["snapshot_reads"] == 1
    finally:
        snap.pending_path.unlink()
    wait_for(lambda: gone(orphans), timeout=30)

    # 3. A clean re-run finishes the sweep without touching the two finished runs.
    res = cli(*sweep_args(spec, store, shared_cache, "--json"))
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert (doc["skipped"], doc["done"], doc["stale_marked_interrupted"]) == (2, 1, [])
    final = _check(store, history, set(), ids)
    assert set(final) == ids and set(statuses(store).values()) == {"done"}


def _fresh(store: Path, since: pd.Timestamp, status: str) -> bool:
    """True once this driver has written a run with `status` (rows of a killed driver are older)."""
    if not store.exists():
        return False
    runs = RunStore(store).runs()
    return bool(((runs["status"] == status) & (runs["updated_at"] >= since)).any())


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path, shared_cache):
    spec, store = write_spec(tmp_path, fractions=(0.125, 0.25, 0.5, 1.0)), tmp_path / "s.duckdb"
    labels = planned(spec)
    ids = set(labels.values())
    rng = random.Random(20240607)
    history: dict = {}
    kills = []
    for attempt, where in enumerate(("start-up", "after a write", "training", "after a write", "training")):
        workers = "2" if attempt % 2 else "1"
        since = pd.Timestamp.now(tz="UTC").tz_localize(None)
        proc = start(*sweep_args(spec, store, shared_cache, "--workers", workers))
        started = time.monotonic()
        try:
            if where == "start-up":  # imports, lock, marking stale runs, data loading, the first 'running' row
                time.sleep(rng.uniform(0.5, 4.0))
            elif where == "training":  # a run is 'running': its worker starts up or trains
                wait_for(lambda: _fresh(store, since, "running"), proc=proc, every=0.02)
                time.sleep(rng.uniform(0.0, 2.0))
            else:  # just after a finished run was written: the next writes, the next submit
                wait_for(lambda: _fresh(store, since, "done"), proc=proc, every=0.02)
                time.sleep(rng.uniform(0.0, 0.3))
        except AssertionError:
            if proc.poll() == 0:
                break  # the sweep finished before this kill point came up
            raise
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read()[-3000:]
            break
        err, orphans = sigkill(proc)
        reported = {labels[x] for x in reported_done(err)}
        prints = _check(store, history, reported, ids)
        kills.append((where, round(time.monotonic() - started, 1), workers, len(prints),
                      sorted(statuses(store).values())))
        wait_for(lambda: gone(orphans), timeout=30)
    print("kills:", kills)
    assert len(kills) >= 3, kills
    res = cli(*sweep_args(spec, store, shared_cache, "--json"))
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert doc["skipped"] + doc["done"] == len(ids) and doc["failed"] == doc["interrupted"] == 0
    final = _check(store, history, set(), ids)
    assert set(final) == ids and set(statuses(store).values()) == {"done"}, kills

"""Several processes on one store at once (real processes, a real DuckDB file).

* Two `run-small` started together on overlapping specs: one holds the writer lock for its sweep, the other waits
  and says who it waits for, then skips what the first finished; no run is lost or written twice.
* `import-runs` while a sweep writes: waits for the lock with a message, then imports; both sets are kept.
* The dashboard's store loading (gaitforecast.dashboard.data) in a tight loop in another process while a sweep
  writes: no read fails, what it sees only grows, and the sweep sees no lock error.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pandas as pd
import pytest

from gaitforecast.store import RunStore
from reliability_util import (
    ENV, REPO, cli, fingerprint, planned, shared_cache, start, statuses, sweep_args, wait_for, write_spec,
)

__all__ = ["shared_cache"]  # the fixture, imported for pytest

WAIT_MESSAGE = re.compile(r"is being written by PID (\d+) .*waiting up to", re.S)
LOCK_TROUBLE = re.compile(r"busy|held open|could not set lock|conflicting lock|Traceback|still being written", re.I)


@pytest.mark.slow
def test_two_sweeps_at_once_one_waits_and_nothing_is_lost_or_written_twice(tmp_path, shared_cache):
    store = tmp_path / "s.duckdb"
    spec_a = write_spec(tmp_path, "a", fractions=(0.25, 0.5))
    spec_b = write_spec(tmp_path, "b", fractions=(0.5, 1.0))
    ids_a, ids_b = set(planned(spec_a).values()), set(planned(spec_b).values())
    shared = ids_a & ids_b
    assert len(shared) == 1 and len(ids_a | ids_b) == 3  # the f0.5 run is in both specs
    procs = {name: start(*sweep_args(spec, store, shared_cache, "--json"))
             for name, spec in (("a", spec_a), ("b", spec_b))}
    results = {name: p.communicate(timeout=300) for name, p in procs.items()}
    for name, (out, err) in results.items():
        assert procs[name].returncode == 0, err[-3000:]
        assert not LOCK_TROUBLE.search(err), err[-3000:]
    waited = {name for name, (_, err) in results.items() if WAIT_MESSAGE.search(err)}
    assert len(waited) == 1, {n: e[-800:] for n, (_, e) in results.items()}
    waiter = waited.pop()
    first = "a" if waiter == "b" else "b"
    assert WAIT_MESSAGE.search(results[waiter][1]).group(1) == str(procs[first].pid)  # names who holds the store
    docs = {name: json.loads(out) for name, (out, _) in results.items()}
    assert (docs[first]["done"], docs[first]["skipped"]) == (2, 0)
    assert (docs[waiter]["done"], docs[waiter]["skipped"]) == (1, 1)  # the shared run was done by the first
    status_of = {r["id"]: r["status"] for r in docs[waiter]["runs"]}
    assert status_of[next(iter(shared))] == "skipped"
    prints = fingerprint(store)
    assert set(prints) == ids_a | ids_b and set(statuses(store).values()) == {"done"}
    rid = next(iter(shared))
    reported = {r["id"]: r["metrics"] for r in docs[first]["runs"]}[rid]
    assert all(prints[rid]["metrics"][k] == v for k, v in reported.items() if v is not None)


def test_import_during_a_sweep_waits_for_the_lock_then_both_are_kept(tmp_path, shared_cache):
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path, fractions=(0.5, 1.0))
    table = tmp_path / "external.csv"
    pd.DataFrame({"params": [1e6, 2e6, 4e6], "samples": [1e8, 2e8, 4e8], "loss": [3.0, 2.8, 2.6]}).to_csv(
        table, index=False)
    sweep = start(*sweep_args(spec, store, shared_cache, "--json"))
    wait_for(lambda: "running" in statuses(store).values(), proc=sweep, every=0.05)
    imported = cli("import-runs", str(table), "--store", str(store), "--json", cores=None)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0 and not LOCK_TROUBLE.search(err), err[-3000:]
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert f"being written by PID {sweep.pid}" in imported.stderr  # it said why it waited
    assert json.loads(imported.stdout)["imported"] == 3
    runs = RunStore(store).runs()
    assert runs["id"].is_unique and len(runs) == 5
    assert sorted(runs["source"]) == ["gaitforecast"] * 2 + [f"import:{table.name}"] * 3
    assert set(runs["status"]) == {"done"}


READER = r"""
import json, sys, time, traceback
from pathlib import Path
from gaitforecast.dashboard import data

store, stop = Path(sys.argv[1]), Path(sys.argv[2])
log = {"reads": 0, "cached": 0, "kinds": {}, "errors": [], "done_counts": []}
print("ready", flush=True)
while not stop.exists():
    for loader in ("snapshot", "_read"):
        if loader == "_read" and not store.exists():
            continue  # the raw loader behind snapshot(); snapshot() itself reports the missing store
        try:
            snap = data.snapshot(store) if loader == "snapshot" else data._read(store)
            if snap.warning:
                log["errors"].append(f"{loader}: warning {snap.warning}")
            log["reads" if loader == "_read" else "cached"] += 1
            log["done_counts"].append(int((snap.runs["status"] == "done").sum()))
        except data.StoreProblem as exc:  # missing / empty before the first run lands: expected
            log["kinds"][exc.kind] = log["kinds"].get(exc.kind, 0) + 1
            if exc.kind not in ("missing", "empty"):
                log["errors"].append(f"{loader}: {exc.kind}: {exc}")
            time.sleep(0.01)
        except Exception:
            log["errors"].append(f"{loader}: " + traceback.format_exc()[-1500:])
print(json.dumps(log), flush=True)
"""


@pytest.mark.slow
def test_dashboard_reading_in_a_loop_while_a_sweep_writes(tmp_path, shared_cache):
    store, stop = tmp_path / "s.duckdb", tmp_path / "stop"
    spec = write_spec(tmp_path)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(store), str(stop)], cwd=REPO, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()[-3000:]
        started = time.monotonic()
        res = cli(*sweep_args(spec, store, shared_cache, "--json"))
        sweep_s = time.monotonic() - started
        time.sleep(0.5)  # a few reads of the final state
        stop.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert res.returncode == 0, res.stderr[-3000:]
    assert not LOCK_TROUBLE.search(res.stderr), res.stderr[-3000:]
    assert json.loads(res.stdout)["done"] == 3
    log = json.loads(out.strip().splitlines()[-1])
    print("reader:", {k: v for k, v in log.items() if k != "done_counts"}, "sweep s:", round(sweep_s, 1))
    assert log["errors"] == [], log["errors"][:3]
    counts = log["done_counts"]
    assert log["reads"] >= max(10, sweep_s), (log["reads"], sweep_s)  # it really kept reading the file
    assert counts[-1] == 3 and counts == sorted(counts), counts  # what the dashboard sees only grows
    assert set(fingerprint(store)) == set(statuses(store)) and len(statuses(store)) == 3

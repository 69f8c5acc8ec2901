"""Shared pieces of the reliability suite (tests/test_reliability_*.py, test_determinism.py): a tiny sweep spec,
`gaitforecast` as a real subprocess (optionally pinned to one core), a fault-injection wrapper that pauses the
driver inside a store write, and a fingerprint of every figure of the finished runs in a store.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from gaitforecast.metrics import MAIN_METRIC
from gaitforecast.store import RunStore

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"}
CLI = [sys.executable, "-c", "from gaitforecast.cli import main; main()"]

# A few GaitFormer runs of 1-3 s each on one core (evaluation on the quick suites dominates): cheap enough to
# kill, resume and repeat many times. One width, so the random-init baseline is computed once.
TINY = """
[sweep]
name = "{name}"
[data]
pool_sequences = 128
frames = 16
heldout_sequences = 16
[train]
samples = {samples}
batch_size = 32
eval_points = 0
eval_during = "main"
log_every = 1
precision = "fp32"
[[grid]]
arch = "gaitformer"
widths = [16]
fractions = {fractions}
"""

# `gaitforecast` with a fault injected into the sweep driver, chosen by GF_FAULT:
#   in_txn        pause inside the transaction that writes a finished run (rows written, COMMIT not yet run)
#   after_commit  pause after that COMMIT, before the connection closes (the run is only in the WAL)
# The pause happens at the GF_FAULT_AT-th finished run (1-based); GF_FAULT_MARKER receives the run id when the
# driver is paused there, so a test can SIGKILL it at exactly that point. Nothing else is changed.
FAULTY_CLI = r"""
import os, sys, time
from pathlib import Path
import gaitforecast.store.runstore as store_mod
import gaitforecast.store.writer as writer_mod

fault, at, marker = os.environ["GF_FAULT"], int(os.environ["GF_FAULT_AT"]), Path(os.environ["GF_FAULT_MARKER"])
state = {"done_writes": 0, "armed": None}
real_upsert, real_connect_write = writer_mod._upsert, store_mod.RunStore._connect_write

def pause(rid):
    marker.write_text(rid)
    time.sleep(600)

def upsert(con, run, now):
    rid = real_upsert(con, run, now)
    if run.get("status") == "done":
        state["done_writes"] += 1
        if state["done_writes"] == at:
            if fault == "in_txn":
                pause(rid)
            state["armed"] = rid
    return rid

def connect_write(self, fn, check=True):
    def wrapped(con):
        result = fn(con)
        if state["armed"] is not None and fault == "after_commit":
            pause(state["armed"])
        return result
    return real_connect_write(self, wrapped, check)

writer_mod._upsert = upsert
store_mod.RunStore._connect_write = connect_write
from gaitforecast.cli import main
main()
"""

DONE_LINE = re.compile(r"^done\s+(\S+ w\d+ f\S+ s\d+)\s", re.MULTILINE)


def write_spec(folder: Path, name: str = "tiny", fractions: tuple[float, ...] = (0.25, 0.5, 1.0),
               samples: int = 96) -> Path:
    """A tiny sweep spec file: one GaitFormer width, one run per data fraction."""
    path = folder / f"{name}.toml"
    path.write_text(TINY.format(name=name, samples=samples, fractions=json.dumps(list(fractions))))
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One data cache (pool and suites) for every sweep of the suite; built by the first sweep that needs it."""
    path = tmp_path_factory.getbasetemp() / "reliability-cache"
    path.mkdir(exist_ok=True)
    return path


def _preexec(cores: int | None, max_file_bytes: int | None) -> Callable[[], None] | None:
    chosen = None
    if cores is not None:
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < cores:
            pytest.skip(f"needs {cores} cores, this machine gives {len(allowed)}")
        chosen = set(allowed[:cores])
    if chosen is None and max_file_bytes is None:
        return None

    def setup() -> None:
        if chosen is not None:
            os.sched_setaffinity(0, chosen)
        if max_file_bytes is not None:  # like `ulimit -f`: writes past it fail with EFBIG (Python ignores SIGXFSZ)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, resource.RLIM_INFINITY))

    return setup


def start(*args: str, cores: int | None = 1, fault: dict[str, str] | None = None,
          stdout: Any = subprocess.PIPE, max_file_bytes: int | None = None) -> subprocess.Popen:
    """Start `gaitforecast ARGS` as a real process; `cores` pins it (and its workers) to that many cores, so a
    sweep runs one thread per worker and is not slowed by oversubscription on a shared CI machine;
    `max_file_bytes` limits the size of any file it writes."""
    command = [sys.executable, "-c", FAULTY_CLI] if fault else CLI
    env = {**ENV, **(fault or {})}
    return subprocess.Popen([*command, *args], cwd=REPO, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_preexec(cores, max_file_bytes))


def cli(*args: str, cores: int | None = 1, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `gaitforecast ARGS` to the end; returns the CompletedProcess (stdout, stderr as text)."""
    proc = start(*args, cores=cores)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"gaitforecast {' '.join(args)} ran over {timeout} s:\n{err[-3000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def sweep_args(spec: Path, store: Path, cache: Path, *extra: str) -> list[str]:
    return ["run-small", "--spec", str(spec), "--store", str(store), "--cache-dir", str(cache), "--quiet", *extra]


def planned(spec: Path) -> dict[str, str]:
    """Run label ('gaitformer w16 f0.5 s0') -> run id, from `run-small --dry-run --json`."""
    res = cli("run-small", "--spec", str(spec), "--dry-run", "--json", cores=None)
    assert res.returncode == 0, res.stderr[-2000:]
    return {f"{r['arch']} w{r['width']} f{r['fraction']:g} s{r['seed']}": r["id"]
            for r in json.loads(res.stdout)["runs"]}


def reported_done(stderr: str) -> set[str]:
    """Labels of the runs a (possibly killed) `run-small --quiet` told the user were done."""
    return set(DONE_LINE.findall(stderr))


def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, every: float = 0.05,
             proc: subprocess.Popen | None = None) -> Any:
    """Poll until `predicate()` is truthy; fail if `proc` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before the condition: "
                                 f"{proc.stderr.read()[-3000:] if proc.stderr else ''}")
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def statuses(store: Path) -> dict[str, str]:
    """Run id -> status, or {} while the store does not exist yet."""
    if not store.exists():
        return {}
    return dict(RunStore(store).runs()[["id", "status"]].itertuples(index=False))


def _num(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def fingerprint(store: Path, status: str | None = "done") -> dict[str, dict[str, Any]]:
    """Every recorded figure of the runs with `status`: sizes, timings, final metrics and curve points, keyed by id.

    Also checks the store's own invariants: ids unique, no run row without a config, curve keys unique.
    """
    rs = RunStore(store)
    runs = rs.runs()
    assert runs["id"].is_unique, "duplicate run ids"
    curves = rs.curves()
    assert not curves.duplicated(["run_id", "step", "name"]).any(), "duplicate curve points"
    metric_cols = [c for c in rs.metric_names() if c in runs.columns]
    out = {}
    for row in runs.to_dict(orient="records"):
        if status is not None and row["status"] != status:
            continue
        points = curves[curves["run_id"] == row["id"]]
        out[row["id"]] = {
            "status": row["status"],
            "sizes": tuple(_num(row[k]) for k in ("params", "params_nonembed", "unique_sequences", "samples", "flops")),
            "timing": (_num(row["wall_time_s"]), _num(row["throughput"]), row["updated_at"]),
            "metrics": {c: _num(row[c]) for c in metric_cols},
            "curve": sorted((int(s), n, _num(v))
                            for s, n, v in points[["step", "name", "value"]].itertuples(index=False)),
        }
    return out


def assert_done_runs_whole(prints: dict[str, dict[str, Any]], main_metric: str = MAIN_METRIC) -> None:
    """A run marked done always carries its figures (the done row, metrics and curve are one transaction)."""
    for rid, fig in prints.items():
        assert fig["metrics"].get(main_metric) is not None, f"done run {rid} lacks {main_metric}"
        assert fig["metrics"].get("ssl_loss_heldout") is not None, f"done run {rid} lacks its held-out loss"
        assert fig["curve"], f"done run {rid} has no curve points"


def children(pid: int, command: bytes | None = None) -> list[int]:
    """Pids of the live direct children of `pid` (the sweep's worker processes and multiprocessing helpers);
    with `command`, only those whose command line contains it (b"spawn_main": the pool's workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes() if command is not None else b""
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z" and (command is None or command in cmd):
                out.append(int(entry.name))
    return out


def gone(pids: list[int]) -> bool:
    """True when none of `pids` is still running (zombies count as gone)."""
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            return False
    return True


def sigkill(proc: subprocess.Popen) -> tuple[str, list[int]]:
    """SIGKILL `proc` (the sweep driver only, as a crash or the OOM killer would); returns its stderr and the pids
    of the children it left behind."""
    orphans = children(proc.pid)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    return err, orphans

"""The adaptive sweep (sweep/adaptive.py): seed design, train -> refit -> suggest until the budget is spent, every
decision stored, resumption after a SIGKILL mid-loop; and `run-small --adaptive` end to end on real training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from adaptive_util import fake_trainer, grid_runs
from gaitforecast.store import RunStore
from gaitforecast.sweep.adaptive import DECISION_KIND, decisions, run_adaptive, session_key

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
RESAMPLES = 60


@pytest.fixture(scope="module")
def grid():
    return grid_runs()


def test_adaptive_spends_the_budget_and_logs_every_decision(tmp_path, grid):
    store, ledger = RunStore(tmp_path / "s.duckdb"), tmp_path / "ledger.txt"
    total = sum(r.flops for r in grid)
    budget = 0.15 * total
    out = run_adaptive(grid, store, budget, fake_trainer(store, ledger), batch=3, n_resamples=RESAMPLES)
    log = decisions(store, out.session)
    trained = ledger.read_text().split()
    by_id = {r.id: r for r in grid}
    # every run trained once, only runs of the grid, within the budget
    assert max(Counter(trained).values()) == 1 and set(trained) <= set(by_id)
    assert out.trained == len(trained) == len(store.done_ids())
    assert out.spent == pytest.approx(sum(by_id[i].flops for i in trained)) and out.spent <= budget
    assert 8 < len(trained) < len(grid)  # more than the seed design, fewer than the grid
    # it stops only when no untrained run fits in what is left
    left = budget - out.spent
    assert out.stopped == "budget spent" and all(r.flops > left for r in grid if r.id not in trained)
    # the log: a seed design of 8 cheap runs spread over both axes, then one decision per refit
    assert [d["step"] for d in log] == list(range(len(log))) and out.steps == len(log)
    seed = log[0]
    assert seed["kind"] == "seed design" and len(seed["runs"]) == 8 and seed["width_before"] is None
    assert len({r["width"] for r in seed["runs"]}) >= 3 and len({r["fraction"] for r in seed["runs"]}) >= 3
    assert [r["id"] for d in log for r in d["runs"]] == trained  # trained in the order decided
    for before, after in zip(log, log[1:]):
        assert after["kind"] == "design" and 1 <= len(after["runs"]) <= 3
        assert after["width_before"] == pytest.approx(before["width_after"])  # the refit after a step measured it
        assert after["spent_before"] == pytest.approx(before["spent_planned"])
        assert 0 < after["expected_width_after"] <= after["width_before"]
        assert all(r["why"] and r["expected_width"] > 0 for r in after["runs"])
    assert log[-1]["width_after"] == pytest.approx(out.width) and log[-1]["spent_after"] == pytest.approx(out.spent)
    assert out.width < log[1]["width_before"]  # the forecast narrowed (0.059 -> 0.048 when written)
    # the same command again: nothing to do, nothing retrained, the log unchanged
    again = run_adaptive(grid, store, budget, fake_trainer(store, ledger), batch=3, n_resamples=RESAMPLES)
    assert again.trained == 0 and again.steps == len(log) and ledger.read_text().split() == trained
    # a larger budget continues the same log
    more = run_adaptive(grid, store, 0.25 * total, fake_trainer(store, ledger), batch=3, n_resamples=RESAMPLES)
    assert more.session == out.session and more.steps > len(log) and more.trained > 0
    assert max(Counter(ledger.read_text().split()).values()) == 1


def test_a_budget_below_the_seed_design_is_refused(tmp_path, grid):
    from gaitforecast.errors import GaitforecastError

    store = RunStore(tmp_path / "s.duckdb")
    cheapest = min(r.flops for r in grid)
    with pytest.raises(GaitforecastError, match="does not cover the seed design: 8 runs"):
        run_adaptive(grid, store, 3 * cheapest, fake_trainer(store, tmp_path / "l.txt"))
    assert not store.exists()  # nothing written


KILLED_DRIVER = """
import sys
from pathlib import Path
from adaptive_util import fake_trainer, grid_runs
from gaitforecast.store import RunStore
from gaitforecast.sweep.adaptive import run_adaptive
runs = grid_runs()
store = RunStore(sys.argv[1])
kill = int(sys.argv[3]) if len(sys.argv) > 3 else None
out = run_adaptive(runs, store, 0.12 * sum(r.flops for r in runs), fake_trainer(store, Path(sys.argv[2]), kill),
                   batch=2, n_resamples=60)
print(out.steps, out.trained, out.stopped)
"""


def test_resume_after_sigkill_mid_loop(tmp_path, grid):
    """SIGKILL the driver in the middle of its 3rd batch (one run of it written, one not): the same command again
    trains only the run left, under the same decision, then goes on with the next step; nothing is trained twice."""
    store_path, ledger = tmp_path / "s.duckdb", tmp_path / "ledger.txt"

    def driver(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", KILLED_DRIVER, str(store_path), str(ledger), *extra],
                              env=ENV, capture_output=True, text=True, timeout=170)

    killed = driver("3")
    assert killed.returncode == -9, killed.stderr[-2000:]
    store = RunStore(store_path)
    session = session_key(grid, "synth-casiab.rank1_mean", 10 * max(r.flops for r in grid), "metric")
    log = decisions(store, session)
    before = ledger.read_text().split()
    assert [d["step"] for d in log] == [0, 1, 2]  # the seed design, then two steps; the kill hit step 2's batch
    step2 = [r["id"] for r in log[2]["runs"]]
    assert len(step2) == 2 and before[-1] == step2[0] and step2[1] not in before
    assert log[1]["width_after"] is not None and log[2]["width_after"] is None

    resumed = driver()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = ledger.read_text().split()
    assert max(Counter(after).values()) == 1  # no run trained twice
    assert after[len(before)] == step2[1]  # the run the kill left is trained first, as decided
    log2 = decisions(store, session)
    assert log2[:3] == [{**log[2], "width_after": log2[2]["width_after"], "spent_after": log2[2]["spent_after"]}
                        if d["step"] == 2 else d for d in log]  # the log before the kill is kept as it was
    assert [d["step"] for d in log2] == list(range(len(log2))) and len(log2) > 3  # continued after step 2
    assert log2[3]["width_before"] == pytest.approx(log2[2]["width_after"])
    assert len({a["key"] for a in store.artifacts(DECISION_KIND)}) == len(log2)  # one artifact per step
    assert set(after) == store.done_ids()


TINY = """
[sweep]
name = "tiny-adaptive"
[data]
pool_sequences = 256
frames = 16
heldout_sequences = 32
suite_size = "sweep"
[train]
epochs = 1
batch_size = 32
eval_points = 0
eval_during = "main"
log_every = 1
precision = "fp32"
[[grid]]
arch = "gaitformer"
widths = [8, 16, 24]
fractions = [0.25, 0.5, 1.0]
"""


@pytest.mark.slow
def test_run_small_adaptive_end_to_end_resumes_after_sigkill(tmp_path):
    """Real training: `run-small --adaptive` on a 9-run grid (3 widths x 3 data fractions), SIGKILLed once the seed
    design (8 runs) is decided and a run has finished; the same command again finishes the seed design without
    retraining anything, then decides the last run. Every run is reported done once across both processes."""
    spec, store = tmp_path / "tiny.toml", tmp_path / "s.duckdb"
    spec.write_text(TINY)
    cmd = [sys.executable, "-c", "from gaitforecast.cli import main; main()", "run-small", "--adaptive",
           "--spec", str(spec), "--store", str(store), "--workers", "1", "--threads", "1", "--quiet",
           "--budget", "1e20"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 150
    while time.time() < deadline and proc.poll() is None:
        if store.exists() and len(RunStore(store, read_wait_s=0.0).done_ids()) >= 1:
            break
        time.sleep(0.5)
    proc.kill()
    _, err1 = proc.communicate(timeout=30)
    assert proc.returncode == -9, err1[-2000:]
    first = RunStore(store).done_ids()
    assert 1 <= len(first) < 8
    res = subprocess.run([*cmd, "--json"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=170)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    def done_lines(text: str) -> list[tuple[str, ...]]:
        return [tuple(line.split()[1:7]) for line in text.splitlines() if line.startswith("done ")]

    # the kill can land between a run's commit and its "done" line, so the first process may print fewer lines
    # than it committed; the second process reports exactly the runs the first did not finish, each once
    assert len(done_lines(err1)) <= len(first)
    again = done_lines(res.stderr)
    assert len(again) == len(set(again)) == 9 - len(first)
    assert not set(again) & set(done_lines(err1))  # none trained twice
    assert doc["trained"] == 9 - len(first) and doc["stopped"] == "every run of the grid is trained"
    log = doc["decisions"]
    assert log[0]["kind"] == "seed design" and len(log[0]["runs"]) == 8 and len(log) == 2
    assert first <= {r["id"] for r in log[0]["runs"]}  # killed while training the seed design
    assert [d["step"] for d in log] == list(range(len(log)))
    assert log[1]["kind"] in ("design", "spread") and len(log[1]["runs"]) == 1  # one worker: one run a step
    assert RunStore(store).done_ids() == {r["id"] for d in log for r in d["runs"]}

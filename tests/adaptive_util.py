"""A stand-in for training in the adaptive-sweep tests: runs "finish" instantly with a metric drawn from a known law.

:func:`fake_trainer` writes each run it is asked to train into the store as done (the same fields the executor
writes, the main metric from TRUE_LAW with 1 % noise seeded by the run id) and appends its id to a ledger file, so
a test can count how often each run was trained. With ``kill_at`` it SIGKILLs its own process in the middle of the
``kill_at``-th batch, after the first run of that batch is written: a driver killed mid-loop.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gaitforecast.metrics import MAIN_METRIC
from gaitforecast.sweep.planner import plan
from gaitforecast.sweep.spec import validate

TRUE_LAW = {"E": 0.2, "A": 30.0, "alpha": 0.3, "B": 20.0, "beta": 0.3}  # -ln rank-1 = E + A/N^a + B/D^b
GRID = {"data": {"pool_sequences": 4096, "frames": 16, "heldout_sequences": 32},
        "train": {"epochs": 1, "batch_size": 32, "eval_points": 1, "precision": "fp32"},
        "grid": [{"arch": "gaitformer", "widths": [8, 16, 32, 64, 128],
                  "fractions": [0.0625, 0.125, 0.25, 0.5, 1.0]}]}


def grid_runs() -> list:
    """The 25 planned runs (5 widths x 5 data fractions) of the tests' grid."""
    return plan(validate(GRID))


def true_accuracy(params: float, samples: float, run_id: str) -> float:
    law = TRUE_LAW
    target = law["E"] + law["A"] / params ** law["alpha"] + law["B"] / samples ** law["beta"]
    noise = np.random.default_rng(int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16)).normal(0.0, 0.01)
    return float(np.exp(-target * np.exp(noise)))


def fake_trainer(store: Any, ledger: Path, kill_at: int | None = None) -> Callable[[list], None]:
    """train(runs) for run_adaptive: see the module docstring."""
    calls = {"n": 0}

    def train(runs: list) -> None:
        calls["n"] += 1
        for i, run in enumerate(runs):
            with store.writer() as w:
                w.upsert_run({"id": run.id, "config": run.config, "arch": run.arch, "width": run.width,
                              "seed": run.seed, "params": run.params, "samples": run.samples, "flops": run.flops,
                              "status": "done", "source": "gaitforecast",
                              "metrics": {MAIN_METRIC: true_accuracy(run.params, run.samples, run.id)}})
            with open(ledger, "a") as f:
                f.write(run.id + "\n")
            if kill_at is not None and calls["n"] == kill_at and i == 0 and len(runs) > 1:
                os.kill(os.getpid(), signal.SIGKILL)

    return train

"""Fixture run stores and server helpers for the dashboard tests; stores are built through the store API.

* :func:`chinchilla_store`: Epoch AI's reconstruction of the Chinchilla table imported with `import_runs`
  (240 runs after dropping the 5 highest-loss rows, metric `loss`); imported runs only, no curves.
* :func:`own_store`: a small synthetic sweep of gaitforecast's own runs (GaitPT and GaitFormer, iso-FLOP design,
  two seeds of some configurations, learning curves, one failed and one running run, a muP coordinate check),
  with parameter counts and FLOPs from the real model families and metrics drawn from a known law.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from gaitforecast.metrics import MAIN_METRIC
from gaitforecast.store import RunStore

HERE = Path(__file__).parent
CHINCHILLA_RUNS = 240
METRIC = MAIN_METRIC  # the product's main metric, so every page opens on it

# Law the synthetic metric follows: error = E + A / N^alpha + B / D^beta (per architecture).
TRUE_LAW = {
    "gaitpt": {"E": 0.12, "A": 8.0, "alpha": 0.30, "B": 3.0, "beta": 0.35},
    "gaitformer": {"E": 0.16, "A": 9.0, "alpha": 0.30, "B": 3.5, "beta": 0.35},
}
BUDGETS = (3e12, 1e13, 3e13, 1e14)
WIDTHS = {"gaitpt": (8, 12, 16, 24, 32), "gaitformer": (64, 96, 128, 192, 256)}


def chinchilla_csv() -> Path:
    """Path of the Chinchilla table (the repo's fixture copy)."""
    from laws_data import CHINCHILLA_CSV

    return CHINCHILLA_CSV


def chinchilla_store(path: Path) -> RunStore:
    """Store holding the Chinchilla table (5 highest-loss rows dropped, as in Epoch's re-analysis)."""
    df = pd.read_csv(chinchilla_csv())
    df = df.sort_values("loss").iloc[: len(df) - 5]
    store = RunStore(path)
    store.import_runs(df, source="chinchilla_epoch.csv",
                      column_map={"params": "Model Size", "flops": "Training FLOP"}, metrics=["loss"])
    return store


def true_error(arch: str, params: float, samples: float) -> float:
    """-ln accuracy of the synthetic world's law (before noise): the target a law is fitted to."""
    law = TRUE_LAW[arch]
    return law["E"] + law["A"] / params ** law["alpha"] + law["B"] / samples ** law["beta"]


def _family(arch: str) -> pd.DataFrame:
    from gaitforecast.models import family_table

    return family_table(arch, frames=60, widths=list(WIDTHS[arch])).set_index("width")


def own_runs(seed: int = 0) -> list[dict]:
    """Run records of the synthetic sweep (metrics and curves included), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    runs = []
    for arch in ("gaitpt", "gaitformer"):
        table = _family(arch)
        budgets = BUDGETS if arch == "gaitpt" else BUDGETS[1:3]
        for budget in budgets:
            for width in WIDTHS[arch]:
                row = table.loc[width]
                samples = int(round(budget / row["train_flops_per_sample"]))
                seeds = (0, 1) if width == WIDTHS[arch][2] else (0,)
                for run_seed in seeds:
                    err = true_error(arch, row["params"], samples) * float(np.exp(rng.normal(0, 0.01)))
                    acc = float(np.exp(-err))  # accuracies are fitted as -ln(accuracy)
                    config = {"arch": arch, "width": int(width), "frames": 60, "samples": samples, "seed": run_seed,
                              "budget": budget}
                    flops = float(row["train_flops_per_sample"] * samples)
                    loss = 2.0 + 40.0 / row["params"] ** 0.25 + 30.0 / samples ** 0.3
                    curve = []
                    for step in range(1, 6):
                        frac = step / 5
                        curve.append({"step": step * 10, "samples_seen": samples * frac, "flops": flops * frac,
                                      "name": "loss", "value": loss + 1.5 * (1 - frac) ** 2})
                        curve.append({"step": step * 10, "samples_seen": samples * frac, "flops": flops * frac,
                                      "name": METRIC, "value": acc * (0.6 + 0.4 * frac)})
                    runs.append({
                        "config": config, "arch": arch, "width": int(width), "seed": run_seed,
                        "params": float(row["params"]), "params_nonembed": float(row["params_nonembed"]),
                        "unique_sequences": float(min(samples, 4000)), "samples": float(samples), "flops": flops,
                        "wall_time_s": flops / 2e10, "throughput": samples / (flops / 2e10), "dtype": "float32",
                        "threads": 1, "status": "done",
                        "metrics": {METRIC: acc, "synth-grew.rank1": float(np.clip(acc - 0.1, 0, 1)), "loss": loss},
                        "curve": curve,
                    })
    return runs


def mup_payload() -> dict:
    """A coordinate check as `gaitforecast mup-check --store` records it: muP flat in width, SP growing."""
    rows = []
    for param, growth in (("mup", 0.0), ("sp", 0.5)):
        for width in (8, 16, 32):
            for step in range(3):
                for module in ("stages.0", "stages.3"):
                    scale = (width / 8) ** (growth * step / 2)
                    rows.append({"parametrization": param, "width": width, "step": step, "module": module,
                                 "l1": round(0.8 * scale * (1.1 if module == "stages.3" else 1.0), 6)})
    return {"arch": "gaitpt", "steps": 3, "rows": rows}


def own_store(path: Path, with_mup: bool = True) -> RunStore:
    """Store with the synthetic sweep, a failed and a running run, and (optionally) a muP check."""
    store = RunStore(path)
    runs = own_runs()
    with store.writer() as w:
        w.write_runs(runs)
        failed = {"config": {"arch": "gaitpt", "width": 64, "note": "oom"}, "arch": "gaitpt", "width": 64,
                  "seed": 0, "params": 1.8e7, "samples": 1000.0, "flops": 1e14, "status": "failed"}
        running = {"config": {"arch": "gaitformer", "width": 512, "note": "in flight"}, "arch": "gaitformer",
                   "width": 512, "seed": 0, "params": 1.3e7, "samples": 2000.0, "flops": 5e13, "status": "running"}
        w.upsert_run(failed)
        w.upsert_run(running)
        if with_mup:
            w.put_artifact("mup_check", mup_payload())
    return store


def n_own_done() -> int:
    """Number of done runs in :func:`own_store`."""
    return len(own_runs())


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 45.0) -> None:
    """Wait until the Streamlit server on ``port`` answers its health check; fail with its output if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"streamlit exited with {proc.returncode}: {out[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"streamlit did not answer on port {port} within {timeout:.0f} s")

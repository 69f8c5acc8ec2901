"""Shared test data for the laws tests: Epoch AI's reconstruction of the Chinchilla runs, and runs on an exact
law with known held-out errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# A copy of ../shared/data/chinchilla_epoch.csv kept in the repo so a clean clone tests the same numbers.
CHINCHILLA_CSV = Path(__file__).resolve().parent / "fixtures" / "chinchilla_epoch.csv"


def chinchilla_runs(drop_highest: int = 5) -> pd.DataFrame:
    """The table as a runs frame (id, arch, params, samples = FLOP / (6 N), flops, loss), Epoch's 5 outliers dropped."""
    raw = pd.read_csv(CHINCHILLA_CSV)
    runs = pd.DataFrame({
        "id": [f"chinchilla-{i}" for i in range(len(raw))], "arch": "imported",
        "params": raw["Model Size"], "flops": raw["Training FLOP"], "loss": raw["loss"],
    })
    runs["samples"] = runs["flops"] / (6.0 * runs["params"])
    if drop_highest:
        runs = runs.drop(runs["loss"].nlargest(drop_highest).index)
    return runs.reset_index(drop=True)


OFFSETS = np.array([0.01, -0.03, 0.02, -0.005, 0.04])  # held-out actual minus the true law: |.| median 0.02


def offset_runs(metric: str) -> pd.DataFrame:
    """20 runs on an exact power law in compute (loss, or -ln accuracy, = E + 50 C^-0.2); the 5 largest are moved by OFFSETS in the
    metric's own units, so a fit on the 15 smaller ones predicts them off by exactly -OFFSETS."""
    flops, params = np.logspace(10, 16, 20), np.logspace(4, 7, 20)
    accuracy = metric != "loss"
    law = (0.1 if accuracy else 1.0) + 50.0 * flops ** -0.2
    values = np.exp(-law) if accuracy else law.copy()  # an accuracy is fitted as -ln(accuracy)
    values[-5:] += OFFSETS
    return pd.DataFrame({"id": [f"r{i}" for i in range(20)], "arch": "x", "params": params,
                         "samples": flops / (6 * params), "flops": flops, metric: values})

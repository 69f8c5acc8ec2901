"""Shared test data for the laws tests: Epoch AI's reconstruction of the Chinchilla runs."""

from __future__ import annotations

from pathlib import Path

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

"""The trivial raw-joint nearest-neighbour baseline of a data config, as the sweep records it in the store.

Each evaluation suite is scored with :func:`gaitforecast.data.suites.baseline_embeddings` (per-joint mean and std
over time of the normalised poses, nothing learned) under the suite's own protocol, so every trained run can be
read against "how much identity the raw joints already carry". Metric names are the runs' own
(``"{suite}.{metric}"``, e.g. ``synth-casiab.rank1_mean``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def raw_baseline_metrics(cache_dir: Path, data: dict[str, Any]) -> dict[str, float]:
    """Raw-joint NN metrics of every evaluation suite of ``data``, keyed ``"{suite}.{metric}"`` like run metrics."""
    from gaitforecast.data.suites import baseline_embeddings, evaluate
    from gaitforecast.train.evaluate import load_suites

    metrics: dict[str, float] = {}
    for s in load_suites(Path(cache_dir), data):
        emb = baseline_embeddings(np.asarray(s.suite.sequences))
        for name, value in evaluate(s.suite, emb).items():
            metrics[f"{s.name}.{name}"] = float(value)
    return metrics


def raw_baseline_payload(cache_dir: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The ``raw_baseline`` artifact of a data config: {"suite_size", "world_seed", "metrics"}."""
    return {"suite_size": data["suite_size"], "world_seed": data["world_seed"],
            "metrics": raw_baseline_metrics(cache_dir, data)}

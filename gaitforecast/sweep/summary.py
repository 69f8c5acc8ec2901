"""The headline of a sweep: per architecture the best finished run and its random-init baseline, the raw-joint
nearest-neighbour baseline, and the compute frontier (every run that beat all cheaper runs).

Use :func:`sweep_summary` on a :class:`~gaitforecast.store.RunStore`; `gaitforecast summary` prints it and
`run-small` prints it at the end. Only finished runs with a finite value of the metric count. Works on imported
tables too: they have no baselines, so those come back as ``None``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws.data import choose_metric, frontier_mask, metric_kind
from gaitforecast.sweep.executors import BASELINE_KIND, RAW_BASELINE_KIND, baseline_key, raw_baseline_key


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _config(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _artifact_value(payloads: dict[str, Any], key_of: Any, config: dict[str, Any] | None, metric: str) -> float | None:
    """``metric`` from the artifact whose key ``key_of(config)`` names, or None (no config, key or value)."""
    if config is None:
        return None
    try:
        key = key_of(config)
    except (KeyError, TypeError):  # a hand-written or imported config without the fields of a planned run
        return None
    payload = payloads.get(key)
    if not isinstance(payload, dict):
        return None
    return _finite((payload.get("metrics") or {}).get(metric))


def _runs(runs: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """The counted runs (finite metric) as plain dicts: id, arch, width, flops (None unless finite > 0), config."""
    out = []
    for row in runs.to_dict(orient="records"):
        value = _finite(row.get(metric))
        if value is None:
            continue
        flops = _finite(row.get("flops"))
        arch = row.get("arch")
        width = _finite(row.get("width"))
        out.append({"id": str(row["id"]), "arch": str(arch) if isinstance(arch, str) and arch else "(none)",
                    "width": int(width) if width is not None else None, "value": value,
                    "flops": flops if flops is not None and flops > 0 else None, "config": _config(row.get("config"))})
    return out


def _better(higher: bool):
    return (lambda a, b: a > b) if higher else (lambda a, b: a < b)


def compute_frontier(runs: list[dict[str, Any]], higher: bool) -> list[dict[str, Any]]:
    """Walk the runs by increasing FLOPs (the better value first at equal FLOPs); keep each that sets a new best."""
    walk = [r for r in runs if r["flops"] is not None]
    keep = frontier_mask(np.array([r["flops"] for r in walk]), np.array([r["value"] for r in walk]), higher,
                         tiebreak=np.array([r["id"] for r in walk]))
    order = sorted((r for r, k in zip(walk, keep) if k), key=lambda r: r["flops"])
    return [{"flops": r["flops"], "value": r["value"], "arch": r["arch"], "run": r["id"]} for r in order]


def sweep_summary(store: Any, metric: str | None = None) -> dict[str, Any]:
    """The sweep's headline for ``metric`` (default: the main metric, else the store's only metric).

    Returns {"metric", "archs": {arch: {"best", "random_init", "n_runs", "best_run", "best_flops", "width"}},
    "raw_baseline", "frontier": [{"flops", "value", "arch", "run"}], "decades"}. ``best`` is the max for accuracy
    metrics, the min for losses; ``random_init`` is the random-init baseline of the arch's best run and
    ``raw_baseline`` the raw-joint NN value for the best run's data config (None where not recorded).
    """
    runs = store.runs(status="done")
    if len(runs) == 0:
        raise GaitforecastError(
            f"the store {store.path} has no finished runs; run `gaitforecast run-small` or "
            f"`gaitforecast import-runs FILE --store {store.path}` first")
    metric = choose_metric(runs, metric)
    counted = _runs(runs, metric)
    if not counted:
        raise GaitforecastError(f"no finished run has a finite {metric!r}; pick another metric with --metric")
    higher = metric_kind(runs, metric) == "accuracy"
    better = _better(higher)
    init = {a["key"]: a["payload"] for a in store.artifacts(BASELINE_KIND)}
    raw = {a["key"]: a["payload"] for a in store.artifacts(RAW_BASELINE_KIND)}

    best_of: dict[str, dict[str, Any]] = {}
    n_runs: dict[str, int] = {}
    for r in counted:  # a tie keeps the cheaper run
        n_runs[r["arch"]] = n_runs.get(r["arch"], 0) + 1
        held = best_of.get(r["arch"])
        if held is None or better(r["value"], held["value"]) or (
                r["value"] == held["value"] and (r["flops"] or math.inf) < (held["flops"] or math.inf)):
            best_of[r["arch"]] = r
    archs = {
        arch: {"best": b["value"], "random_init": _artifact_value(init, baseline_key, b["config"], metric),
               "n_runs": n_runs[arch], "best_run": b["id"], "best_flops": b["flops"], "width": b["width"]}
        for arch, b in sorted(best_of.items(), key=lambda kv: (-kv[1]["value"] if higher else kv[1]["value"], kv[0]))
    }
    top = best_of[next(iter(archs))]
    data = (top["config"] or {}).get("data")
    raw_value = _artifact_value(raw, raw_baseline_key, data if isinstance(data, dict) else None, metric)
    frontier = compute_frontier(counted, higher)
    decades = math.log10(frontier[-1]["flops"] / frontier[0]["flops"]) if len(frontier) > 1 else 0.0
    return {"metric": metric, "archs": archs, "raw_baseline": raw_value, "frontier": frontier, "decades": decades}

"""`gaitforecast summary`: the sweep's headline (best run per architecture against its baselines, the frontier)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from gaitforecast.cli._common import JsonOption, StoreOption, app, emit_json, table_console
from gaitforecast.metrics import MAIN_METRIC


def _num(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def print_summary(doc: dict[str, Any], out: Console | None = None) -> None:
    """The human form of :func:`gaitforecast.sweep.summary.sweep_summary` (Rich tables, on stderr)."""
    out = out or table_console()
    metric = doc["metric"]
    table = Table(title=f"best {metric} per architecture", title_justify="left")
    for col in ("arch", "runs", "best", "random init", "width", "FLOPs", "run"):
        table.add_column(col, justify="left" if col in ("arch", "run") else "right")
    for arch, row in doc["archs"].items():
        table.add_row(arch, str(row["n_runs"]), _num(row["best"]), _num(row["random_init"]),
                      _num(row["width"], "d"), _num(row["best_flops"], ".3g"), row["best_run"])
    out.print(table)
    out.print(f"raw-joint nearest neighbour: {_num(doc['raw_baseline'])}", highlight=False)
    out.print(f"frontier: {len(doc['frontier'])} runs, each better than every cheaper run "
              f"({doc['decades']:.2f} decades of compute)", highlight=False)
    frontier = Table()
    for col in ("FLOPs", metric, "arch", "run"):
        frontier.add_column(col, justify="right" if col in ("FLOPs", metric) else "left")
    for point in doc["frontier"]:
        frontier.add_row(f"{point['flops']:.3g}", f"{point['value']:.4g}", point["arch"], point["run"])
    out.print(frontier)


@app.command("summary")
def summary_cmd(
    store: Path = StoreOption,
    metric: Optional[str] = typer.Option(
        None, "--metric", help=f"Metric (default: the main metric, {MAIN_METRIC}, else the store's only metric)."),
    json_out: bool = JsonOption,
) -> None:
    """The sweep's headline: best run per architecture vs random init and raw joints, and the compute frontier."""
    from gaitforecast.store import RunStore
    from gaitforecast.sweep.summary import sweep_summary

    doc = sweep_summary(RunStore(store), metric)
    if json_out:
        emit_json(doc)
        return
    print_summary(doc)

"""`gaitforecast runs`, `export` and `import-runs`: look at, save and bring in run tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from gaitforecast.cli._common import (
    JsonOption, StoreOption, app, console, emit_json, emit_json_list, table_console,
)
from gaitforecast.errors import GaitforecastError
from gaitforecast.metrics import MAIN_METRIC
from gaitforecast.store import RunStore
from gaitforecast.store.exchange import export_format, prepare_import, read_table

_SHOWN_METRICS = 4
_SHOWN_RUNS = 1000  # a sweep spec plans at most 1,000 runs without --yes: its table is shown whole
_PREFERRED = (MAIN_METRIC, "loss", "ssl_loss")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _runs_table(records: list[dict[str, Any]], metric_names: list[str], total: int) -> Table:
    shown = [m for m in _PREFERRED if m in metric_names] + [m for m in metric_names if m not in _PREFERRED]
    sources = sorted({r["source"] for r in records})
    fields = [f for f in ("id", "arch", "width", "seed", "params", "samples", "flops", "status", "source")
              if any(r[f] is not None for r in records) and not (f == "source" and len(sources) == 1)]
    title = (f"{len(records)} runs" if total == len(records) else f"the {len(records):,} newest of {total:,} runs")
    title += f" from {sources[0]}" if len(sources) == 1 else ""
    table = Table(title=title, title_justify="left")
    for name in (*fields, *shown[:_SHOWN_METRICS]):
        table.add_column(name, justify="left" if name in ("id", "arch", "status", "source") else "right",
                         no_wrap=name == "id")
    for r in records:
        cells = [r[f] for f in fields] + [r["metrics"].get(m) for m in shown[:_SHOWN_METRICS]]
        table.add_row(*(_fmt(c) for c in cells))
    return table


@app.command("runs")
def runs_cmd(
    store: Path = StoreOption,
    status: Optional[str] = typer.Option(
        None, "--status", help="Only runs with this status (running/done/failed/interrupted)."),
    limit: int = typer.Option(_SHOWN_RUNS, "--limit", min=1, help="Rows of the table: the newest runs. --json and "
                              "`gaitforecast export` give every run."),
    json_out: bool = JsonOption,
) -> None:
    """List the runs in the store (table on stderr; --json: a list with metrics per run on stdout, written a page
    of runs at a time, so memory does not grow with the store)."""
    run_store = RunStore(store)
    if json_out:
        emit_json_list(run_store.iter_records(status))
        return
    total = run_store.count(status)
    records = run_store.newest_records(limit, status)
    names = sorted({m for r in records for m in r["metrics"]})
    table_console().print(_runs_table(records, names, total))
    if total > len(records):
        console.print(f"showing the {len(records):,} newest of {total:,} runs; --limit N shows more, --json or "
                      "`gaitforecast export` gives every run", highlight=False)
    hidden = len(names) - _SHOWN_METRICS
    if hidden > 0:
        console.print(f"{hidden} more metrics not shown; use --json or `gaitforecast export` for all of them")


@app.command("export")
def export_cmd(
    file: Path = typer.Argument(..., help="Output file: .parquet or .csv."),
    store: Path = StoreOption,
    fmt: Optional[str] = typer.Option(None, "--format", help="parquet or csv (default: from the file suffix)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status."),
    json_out: bool = JsonOption,
) -> None:
    """Write all runs with their final metrics (one column each) to a Parquet or CSV file."""
    resolved = export_format(file, fmt)
    rows = RunStore(store).export(file, resolved, status)
    if json_out:
        emit_json({"path": str(file), "format": resolved, "rows": rows, "store": str(store)})
    else:
        console.print(f"wrote {rows} runs to {file} ({resolved})", highlight=False)


def _column_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        name, column = name.strip(), column.strip().strip("'\"")
        if not sep or not name or not column:
            raise GaitforecastError(f'--column {pair!r} must look like params="Model Size"')
        mapping[name] = column
    return mapping


def _kinds(items: list[str]) -> dict[str, str]:
    """--kind values: "KIND" (every metric) or "METRIC=KIND"."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, kind = item.rpartition("=")
        out[name if sep else "*"] = kind.strip()
    return out


_MLFLOW = "From MLflow (instead of FILE)"


def _mlflow_plan(uri: str, experiment: Optional[str], keys: dict[str, Optional[str]], metric: Optional[list[str]],
                 kinds: dict[str, str], source: Optional[str], file: Optional[Path], column: Optional[list[str]],
                 run_column: Optional[str]) -> tuple[Any, str, dict[str, int]]:
    """(plan, where it came from, runs left out by status) of `import-runs --mlflow`."""
    from gaitforecast.integrations.mlflow_io import read_experiment

    if file is not None:
        raise GaitforecastError("give a FILE or --mlflow URI, not both")
    if not experiment:
        raise GaitforecastError("--mlflow needs --experiment NAME (the MLflow experiment whose runs to import)")
    if column or run_column:
        raise GaitforecastError("--column and --run-column map a file's columns; with --mlflow use --params-key, "
                                "--samples-key and --flops-key")
    found = read_experiment(uri, experiment, params_key=keys["params"], samples_key=keys["samples"],
                            flops_key=keys["flops"], metrics=metric or None, kinds=kinds, source=source)
    return found.plan, f"MLflow experiment {experiment!r} at {found.tracking_uri}", found.not_finished


@app.command("import-runs")
def import_runs_cmd(
    file: Optional[Path] = typer.Argument(None, help="CSV or Parquet table: params, samples (or flops), metric "
                                          "columns. Or --mlflow instead."),
    store: Path = StoreOption,
    column: Optional[list[str]] = typer.Option(
        None, "--column", help='Map a field to your column, e.g. --column params="Model Size" (repeatable).'),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", help="Import only these metric columns (default: every other numeric column)."),
    source: Optional[str] = typer.Option(
        None, "--source", help="Source name recorded as import:NAME (default: file name)."),
    run_column: Optional[str] = typer.Option(
        None, "--run-column", help="Column naming the training run of each row, when rows are checkpoints of "
                                   "fewer runs: the laws then resample a run's rows together (and warn)."),
    kind: Optional[list[str]] = typer.Option(
        None, "--kind", help="What a metric is: loss, accuracy or error; KIND for every metric or METRIC=KIND "
                             "(repeatable). Stored with the runs; names like val_loss, top1, top1_err need none."),
    mlflow: Optional[str] = typer.Option(
        None, "--mlflow", help="Import the finished runs of an MLflow experiment from this tracking URI "
        "(sqlite:///mlflow.db, file:./mlruns, http://HOST:5000).", rich_help_panel=_MLFLOW),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="The MLflow experiment's name.",
                                             rich_help_panel=_MLFLOW),
    params_key: Optional[str] = typer.Option(
        None, "--params-key", help="Metric, param or tag holding the parameter count (default params; "
        "params.NAME, metrics.NAME, tags.NAME say where).", rich_help_panel=_MLFLOW),
    samples_key: Optional[str] = typer.Option(
        None, "--samples-key", help="... samples (sequences, tokens) seen (default samples).", rich_help_panel=_MLFLOW),
    flops_key: Optional[str] = typer.Option(
        None, "--flops-key", help="... training FLOPs (default flops).", rich_help_panel=_MLFLOW),
    json_out: bool = JsonOption,
) -> None:
    """Import externally trained runs (a file, or an MLflow experiment); all rows or none, re-importing the same
    runs adds no duplicates."""
    not_finished: dict[str, int] = {}
    if mlflow is not None:
        plan, origin, not_finished = _mlflow_plan(mlflow, experiment, {"params": params_key, "samples": samples_key,
                                           "flops": flops_key}, metric, _kinds(kind or []), source, file, column,
                                           run_column)
    elif file is None:
        raise GaitforecastError("give a FILE (CSV or Parquet) or --mlflow URI --experiment NAME to import")
    elif experiment or params_key or samples_key or flops_key:
        raise GaitforecastError("--experiment, --params-key, --samples-key and --flops-key go with --mlflow; map a "
                                "file's columns with --column params=\"Model Size\"")
    else:
        plan = prepare_import(read_table(file), source or file.name, _column_map(column or []), metric or None,
                              _kinds(kind or []), run_column)
        origin = str(file)
    count = RunStore(store).write_import(plan, on_wait=lambda msg: console.print(msg, highlight=False))
    summary = {
        "imported": count, "store": str(store), "source": plan.source, "metrics": plan.metrics,
        "ignored_columns": plan.ignored_columns, "flops_estimated": plan.flops_estimated,
        "samples_derived": plan.samples_derived, "kinds": plan.kinds, "unknown_kind_columns": plan.unknown_kind,
    }
    if mlflow is not None:
        summary["not_finished"] = not_finished  # status -> runs left out (RUNNING, FAILED, KILLED)
    if json_out:
        emit_json(summary)
        return
    console.print(f"imported {count} runs from {origin} into {store} as {plan.source}", highlight=False)
    if not_finished:
        left = ", ".join(f"{n} {status}" for status, n in sorted(not_finished.items()))
        console.print(f"left out {sum(not_finished.values())} run(s) that are not FINISHED ({left})", highlight=False)
    console.print(f"metrics: {', '.join(plan.metrics) or 'none'}", highlight=False)
    if plan.flops_estimated:
        console.print("no flops column: flops estimated as 6 x params x samples (recorded per run)", highlight=False)
    if plan.samples_derived:
        console.print("no samples column: samples derived as flops / (6 x params) (recorded per run)", highlight=False)
    if plan.kinds:
        console.print("metric kinds: " + ", ".join(f"{m}: {k}" for m, k in plan.kinds.items()), highlight=False)
    if plan.ignored_columns:
        console.print(f"ignored columns: {', '.join(plan.ignored_columns)}", highlight=False)
    if plan.unknown_kind:
        console.print(f"not imported as metrics (their names do not say loss, accuracy or error): "
                      f"{', '.join(plan.unknown_kind)}; import them with --metric NAME --kind NAME=KIND",
                      highlight=False)

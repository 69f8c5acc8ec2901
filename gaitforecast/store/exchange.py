"""Moving run tables in and out of the store: import of external CSV/Parquet tables, export, records.

Use :func:`prepare_import` to check a table before anything is written (it raises with the offending row numbers),
then ``RunStore.write_import(plan)``; ``RunStore.import_runs`` does both. Import rules:

* columns ``params`` and ``samples`` (sequences or tokens seen), optional ``flops``, ``arch``, ``seed`` (and the other
  run columns of an export), any other numeric column is a final metric; ``column_map`` renames, e.g.
  ``{"params": "Model Size", "flops": "Training FLOP"}``;
* no ``flops``: flops = 6 x params x samples, recorded as ``flops_estimated``; no ``samples`` but ``flops``:
  samples = flops / (6 x params), recorded in the run's config under ``derived``;
* params/samples/flops must be finite and positive, metric cells numbers (empty cells mean "not measured"),
  rows must not repeat; otherwise nothing is imported and the error lists the data rows (1-based, header excluded).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.metrics import check_kind, kind_from_name
from gaitforecast.outfile import file_kind, output_path, write_file  # noqa: F401  (file_kind: runstore's messages)
from gaitforecast.record import RUN_FIELDS, SIZE_FIELDS, names_of, run_id

# Run columns an import can carry over; the rest of RUN_FIELDS (id, status, config ...) is recomputed on import.
_IMPORT_FLOAT = names_of("float", imported=True)
_IMPORT_INT = names_of("int", imported=True)
_IMPORT_TEXT = names_of("text", imported=True)
_POSITIVE = SIZE_FIELDS
_MAX_LISTED = 20


@dataclass
class ImportPlan:
    """A checked import: runs ready for StoreWriter.write_runs, plus what was inferred, for the user."""

    source: str
    runs: list[dict[str, Any]]
    metrics: list[str]
    ignored_columns: list[str] = field(default_factory=list)
    flops_estimated: bool = False
    samples_derived: bool = False
    kinds: dict[str, str] = field(default_factory=dict)  # metric -> loss | accuracy | error, stored with the runs
    unknown_kind: list[str] = field(default_factory=list)  # numeric columns left out: no --metric, kind unknown


def _rows_text(problems: dict[int, list[str]], keys: list[str] | None = None) -> str:
    rows = sorted(problems)
    named = (lambda r: f"row {r} ({keys[r - 1]})") if keys else (lambda r: f"row {r}")
    listed = "; ".join(f"{named(r)}: {', '.join(problems[r])}" for r in rows[:_MAX_LISTED])
    more = f"; and {len(rows) - _MAX_LISTED} more rows" if len(rows) > _MAX_LISTED else ""
    return f"rows {', '.join(map(str, rows[:_MAX_LISTED]))}{' ...' if more else ''} ({listed}{more})"


def _numbers(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Column as float64, and a mask of cells that hold something that is not a number."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype("float64"), pd.Series(False, index=col.index)
    values = pd.to_numeric(col, errors="coerce").astype("float64")
    present = col.notna() & (col.astype(str).str.strip() != "")
    return values, present & values.isna()


def _source_name(source: str) -> str:
    source = str(source).strip()
    if not source:
        raise GaitforecastError("an import needs a source name (e.g. the file name)")
    return source if source.startswith("import:") else f"import:{source}"


def _mapped(df: pd.DataFrame, column_map: Mapping[str, str] | None) -> tuple[pd.DataFrame, list[str]]:
    column_map = dict(column_map or {})
    missing = [f"{k}={v!r}" for k, v in column_map.items() if v not in df.columns]
    if missing:
        raise GaitforecastError(
            f"column mapping {', '.join(missing)} names columns the table lacks; columns are: "
            + ", ".join(map(str, df.columns))
        )
    data = df.copy()
    shadowed = [str(t) for t in column_map if t in df.columns and t not in column_map.values()]
    for target, source in column_map.items():
        data[target] = df[source]  # one column may feed several fields (params and params_nonembed)
    renamed = {s for s in column_map.values() if s not in column_map}
    return data.drop(columns=sorted(renamed)), shadowed


def prepare_import(
    df: pd.DataFrame, source: str, column_map: Mapping[str, str] | None = None, metrics: list[str] | None = None,
    kinds: Mapping[str, str] | None = None, run_column: str | None = None, key_column: str | None = None,
) -> ImportPlan:
    """Check and convert an external run table; raise GaitforecastError naming bad rows. Writes nothing.

    ``run_column`` names a column that says which training run a row belongs to, for tables whose rows are
    checkpoints of fewer runs: it is recorded per row (config "run") and the laws resample those rows together.

    ``key_column`` names a column that identifies each row where it comes from (an MLflow run id): the run id is
    then a hash of the source and that key instead of the row's figures, so two runs with equal figures stay two
    runs and a run imported again replaces itself even when its figures changed; row errors name the key.

    ``kinds`` maps metric columns to loss / accuracy / error (key "*": every metric). Without ``metrics``, only
    columns whose kind is given or certain from the name (loss, val_acc, top1_err, rank1 ...) are metrics; other
    numeric columns are listed as ignored."""
    kinds = {str(k): check_kind(v) for k, v in dict(kinds or {}).items()}
    source = _source_name(source)
    if len(df) == 0:
        raise GaitforecastError("the table has no data rows; nothing to import")
    repeated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if repeated:
        raise GaitforecastError(f"the table has more than one column named {', '.join(repeated)}; rename them")
    data, ignored = _mapped(df, column_map)
    if "params" not in data.columns or not ({"samples", "flops"} & set(data.columns)):
        raise GaitforecastError(
            "an import needs a `params` column and a `samples` or `flops` column; map yours with "
            '--column params="Model Size" --column samples="Tokens" (columns are: '
            + ", ".join(map(str, df.columns)) + ")"
        )
    problems: dict[int, list[str]] = {}

    def flag(mask: pd.Series, text: str) -> None:
        for pos in np.flatnonzero(mask.to_numpy()):
            problems.setdefault(int(pos) + 1, []).append(text)

    numeric: dict[str, pd.Series] = {}
    for name in _IMPORT_FLOAT + _IMPORT_INT:
        if name in data.columns:
            values, bad = _numbers(data[name])
            flag(bad, f"{name} is not a number")
            numeric[name] = values
    for name in _IMPORT_INT:  # whole numbers a store column can hold (seed >= 0; width, threads >= 1)
        if name in numeric:
            values = numeric[name]
            given = values.notna()
            finite = given & np.isfinite(values)
            flag(given & ~np.isfinite(values), f"{name} is not finite")
            flag(finite & (values != np.round(values)), f"{name} is not a whole number")
            low = 0 if name == "seed" else 1
            flag(finite & ((values < low) | (values > 2**31 - 1)), f"{name} is outside {low}..{2**31 - 1}")
    for name in _POSITIVE:
        if name in numeric:
            values = numeric[name]
            flag(values.isna() & ~_numbers(data[name])[1], f"{name} is missing")
            flag(np.isinf(values), f"{name} is infinite")
            flag(values.notna() & np.isfinite(values) & (values <= 0), f"{name} is not positive")

    known = set(RUN_FIELDS) | {"metrics", "curve"}
    keys = None
    if key_column is not None:
        if key_column not in data.columns or data[key_column].isna().any():
            raise GaitforecastError(f"key column {key_column!r} is missing or has empty cells")
        keys = [str(k) for k in data[key_column]]
        known = known | {key_column}
    if run_column is not None:
        if run_column not in data.columns:
            raise GaitforecastError(f"--run-column {run_column!r} is not a column of the table; columns are: "
                                    + ", ".join(map(str, data.columns)))
        if data[run_column].isna().any():
            flag(data[run_column].isna(), f"{run_column} (the run a checkpoint belongs to) is missing")
        known = known | {run_column}
    ignored += [str(c) for c in data.columns
                if c in known and c not in numeric and c not in _IMPORT_TEXT and c != key_column]
    if metrics is not None:
        absent = [m for m in metrics if m not in data.columns]
        if absent:
            raise GaitforecastError(f"metric column(s) {', '.join(absent)} not in the table; columns are: "
                                    + ", ".join(map(str, data.columns)))
        candidates = list(metrics)
        ignored += [str(c) for c in data.columns if c not in known and c not in metrics]
    else:
        candidates = [c for c in data.columns if c not in known and not str(c).startswith("Unnamed:")]
        ignored += [str(c) for c in data.columns if str(c).startswith("Unnamed:")]  # a saved pandas index
    unknown_kind = [k for k in kinds if k != "*" and k not in candidates]
    if unknown_kind:
        raise GaitforecastError(f"--kind names column(s) {', '.join(unknown_kind)} that are not metric columns of "
                                "the table; metric columns are: " + ", ".join(map(str, candidates)))
    kind_of: dict[str, str] = {}
    metric_values: dict[str, pd.Series] = {}
    unnamed_kind: list[str] = []
    for name in candidates:
        col = data[name]
        values, bad = _numbers(col)
        if metrics is None and (pd.api.types.is_bool_dtype(col) or not values.notna().any()):
            ignored.append(str(name))  # a text or empty column (labels, colours): not a metric
            continue
        kind = kinds.get(str(name), kinds.get("*")) or kind_from_name(str(name))
        if metrics is None and kind is None:
            unnamed_kind.append(str(name))  # x, y, step ...: not a metric unless the user says so
            continue
        flag(bad, f"metric {name} is not a number")
        flag(np.isinf(values), f"metric {name} is infinite")
        if kind in ("accuracy", "error"):
            flag(values.notna() & np.isfinite(values) & ((values < 0) | (values > 1)),
                 f"{kind} {name} is outside [0, 1] (a fraction; pass --kind loss if it is not one)")
        metric_values[str(name)] = values
        if kind is not None:
            kind_of[str(name)] = kind
    if problems:
        listed = _rows_text(problems, keys)
        raise GaitforecastError(
            f"{len(problems)} of {len(data)} rows cannot be imported, nothing was imported: {listed}. "
            "Rows are data rows counted from 1 (the header is not counted). Fix or drop them and import again."
        )

    runs, seen = [], {}
    for pos in range(len(data)):
        content: dict[str, Any] = {}
        for name, values in numeric.items():
            value = values.iloc[pos]
            if not math.isnan(value):
                content[name] = int(value) if name in _IMPORT_INT else float(value)
        for name in _IMPORT_TEXT:
            if name in data.columns and pd.notna(data[name].iloc[pos]):
                content[name] = str(data[name].iloc[pos])
        run_metrics = {n: float(v.iloc[pos]) for n, v in metric_values.items() if not math.isnan(v.iloc[pos])}
        rid = run_id({"source": source, "key": keys[pos]} if keys else
                     {"source": source, "row": content, "metrics": run_metrics})
        if rid in seen:
            problems.setdefault(pos + 1, []).append(f"repeats row {seen[rid]}")
            continue
        seen[rid] = pos + 1
        derived: dict[str, str] = {}
        run = {"id": rid, "status": "done", "source": source, "arch": "imported", **content}
        if "flops" not in content:
            run["flops"] = 6.0 * content["params"] * content["samples"]
            run["flops_estimated"] = True
            if not (math.isfinite(run["flops"]) and run["flops"] > 0):
                problems.setdefault(pos + 1, []).append(
                    f"flops estimated as 6 x params x samples is {run['flops']:.3g} (overflow or underflow)")
        elif "flops_estimated" in data.columns and data["flops_estimated"].iloc[pos] in (True, "True", "true", 1):
            run["flops_estimated"] = True  # an export of estimated FLOPs stays marked as such
        if "samples" not in content:
            run["samples"] = content["flops"] / (6.0 * content["params"])
            derived["samples"] = "flops / (6 * params)"
            if not (math.isfinite(run["samples"]) and run["samples"] > 0):
                problems.setdefault(pos + 1, []).append(
                    f"samples derived as flops / (6 x params) is {run['samples']:.3g} (overflow or underflow)")
        config = {"source": source, "row": pos + 1, "values": content, "columns": dict(column_map or {})}
        if derived:
            config["derived"] = derived
        if "id" in data.columns and pd.notna(data["id"].iloc[pos]):
            config["original_id"] = str(data["id"].iloc[pos])
        if run_column is not None and pd.notna(data[run_column].iloc[pos]):
            config["run"] = str(data[run_column].iloc[pos])
        run["config"] = config
        run["metrics"] = run_metrics
        runs.append(run)
    if problems:
        repeats = all(all(t.startswith("repeats row") for t in texts) for texts in problems.values())
        listed = _rows_text(problems, keys)
        raise GaitforecastError(
            f"{len(problems)} rows repeat earlier rows exactly, nothing was imported: {listed}. "
            "Drop the repeated rows and import again." if repeats else
            f"{len(problems)} of {len(data)} rows cannot be imported, nothing was imported: {listed}. "
            "Rows are data rows counted from 1 (the header is not counted). Fix or drop them and import again."
        )
    return ImportPlan(
        source=source, runs=runs, metrics=sorted(metric_values), ignored_columns=sorted(set(ignored)),
        flops_estimated="flops" not in numeric, samples_derived="samples" not in numeric,
        kinds=dict(sorted(kind_of.items())), unknown_kind=sorted(unnamed_kind),
    )


def _refuse_repeated_header(path: Path, sep: str) -> None:
    """pandas renames a repeated column ("loss", "loss.1"), which would import the copy as a metric: refuse."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle, delimiter=sep), [])
    seen, repeated = set(), []
    for name in header:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise GaitforecastError(f"{path}: the header names {', '.join(map(repr, repeated))} more than once; "
                                "rename the repeated columns and import again")


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV or Parquet run table (by suffix) for import."""
    path = Path(path)
    if not path.is_file():
        raise GaitforecastError(f"no file at {path}; give a CSV or Parquet table of runs")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            _refuse_repeated_header(path, sep)
            return pd.read_csv(path, sep=sep)
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise GaitforecastError(f"cannot read {path} as {suffix[1:]}: {exc}") from exc
    raise GaitforecastError(f"{path}: unknown table format {suffix!r}; use .csv or .parquet")


def export_format(path: Path, fmt: str | None) -> str:
    """Resolve the export format from `fmt` or the file suffix."""
    fmt = (fmt or {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}.get(path.suffix.lower(), "")).lower()
    if fmt not in ("parquet", "csv"):
        raise GaitforecastError(f"cannot tell the export format of {path}; use a .parquet or .csv name or --format")
    return fmt


def export_frame(frame: pd.DataFrame, path: Path, fmt: str | None) -> int:
    """Write `frame` to `path` atomically (temp file, then rename); returns the row count. Only a regular file
    (or nothing) at `path` is replaced: a device, FIFO, socket or directory there is refused, untouched."""
    fmt = export_format(path, fmt)
    output_path(path, "export to")  # before serialising the table
    data = frame.to_parquet(index=False) if fmt == "parquet" else frame.to_csv(index=False).encode()
    write_file(path, data, "export to")
    return len(frame)


def records_from_frame(frame: pd.DataFrame, metric_names: list[str]) -> list[dict[str, Any]]:
    """Rows of RunStore.runs() as JSON-ready dicts with a `metrics` mapping (missing metrics left out)."""
    records = []
    for row in frame.to_dict(orient="records"):
        record: dict[str, Any] = {}
        for name in RUN_FIELDS:
            value = row.get(name)
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif name in ("config", "versions") and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    raise GaitforecastError(
                        f"run {row.get('id')}: its {name} is not valid JSON ({exc}); the store was edited by hand "
                        "or is damaged. Fix or delete that run (or restore a backup)") from None
            record[name] = _clean(value)
        record["metrics"] = {m: _clean(row[m]) for m in metric_names if m in row and _clean(row[m]) is not None}
        records.append(record)
    return records


def _clean(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value

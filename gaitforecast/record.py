"""The run record: every field a run has in the store, its type, canonical JSON and the run id.

This is the one place the fields are listed. The store's table (``store.schema``), its writer's coercions, the
import's carried-over columns (``store.exchange``) and what counts as a metric column (``laws.data``,
``dashboard.data``) are derived from :data:`FIELDS`; a new field is one line here (plus a schema migration).

A run's id is the first 16 hex characters of sha256 over the canonical JSON of its resolved config, so the same
config always gets the same id (re-running a sweep skips finished runs; re-importing a table adds nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields as dataclass_fields, replace
from typing import Any, Mapping

import numpy as np

from gaitforecast.errors import GaitforecastError


@dataclass(frozen=True)
class Field:
    """One column of the run record: its name, kind (how values are coerced) and SQL type in the store."""

    name: str
    kind: str  # text | int | float | bool | json | status | time
    sql: str
    imported: bool = False  # an imported table may carry it over (the rest is recomputed on import)


FIELDS: tuple[Field, ...] = (
    Field("id", "text", "VARCHAR PRIMARY KEY"),
    Field("arch", "text", "VARCHAR", imported=True),
    Field("width", "int", "INTEGER", imported=True),
    Field("seed", "int", "BIGINT", imported=True),
    # Counts are DOUBLE because imported tables carry fractional sizes (digitised plots) and FLOPs pass 2**63.
    Field("params", "float", "DOUBLE", imported=True),
    Field("params_nonembed", "float", "DOUBLE", imported=True),
    Field("unique_sequences", "float", "DOUBLE", imported=True),
    Field("samples", "float", "DOUBLE", imported=True),
    Field("flops", "float", "DOUBLE", imported=True),
    Field("wall_time_s", "float", "DOUBLE", imported=True),
    Field("throughput", "float", "DOUBLE", imported=True),
    Field("dtype", "text", "VARCHAR", imported=True),
    Field("threads", "int", "INTEGER", imported=True),
    Field("versions", "json", "VARCHAR"),
    Field("git_sha", "text", "VARCHAR", imported=True),
    Field("status", "status", "VARCHAR NOT NULL"),
    Field("source", "text", "VARCHAR NOT NULL"),
    Field("config", "json", "VARCHAR NOT NULL"),
    Field("created_at", "time", "TIMESTAMP"),
    Field("updated_at", "time", "TIMESTAMP"),
    Field("flops_estimated", "bool", "BOOLEAN DEFAULT FALSE"),
    Field("error", "text", "VARCHAR"),
    Field("host", "text", "VARCHAR", imported=True),
    Field("device", "text", "VARCHAR", imported=True),
    Field("compiled", "bool", "BOOLEAN DEFAULT FALSE"),  # the training step ran under torch.compile
)
RUN_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS)
RUN_COLUMNS: tuple[tuple[str, str], ...] = tuple((f.name, f.sql) for f in FIELDS)
RUN_STATUSES = ("running", "done", "failed", "interrupted")
SIZE_FIELDS = ("params", "samples", "flops")  # what a scaling law reads; must be finite and positive


def names_of(kind: str, imported: bool | None = None) -> tuple[str, ...]:
    """Field names of one kind (``imported=True``: only those an import carries over)."""
    return tuple(f.name for f in FIELDS if f.kind == kind and (imported is None or f.imported == imported))


# ---------------------------------------------------------------- canonical JSON and the run id
def to_plain(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, sets, paths and dataclasses into JSON values; non-finite floats
    become None."""
    if hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclass_fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_plain(v) for v in obj)
    if isinstance(obj, (np.ndarray, np.generic)):
        return to_plain(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise GaitforecastError(f"cannot store a value of type {type(obj).__name__} ({obj!r:.60}) as JSON")


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, floats by repr: the same config always gives the same text."""
    return json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_id(config: Any) -> str:
    """Id of a run: first 16 hex chars of sha256 over the canonical JSON of its resolved config."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- the record
@dataclass
class RunRecord:
    """One run as the store holds it. The planner fills what is known before training (config, id, sizes);
    :meth:`finished` adds what only training measures; :meth:`to_row` is what the store writer takes."""

    config: dict[str, Any]
    id: str = ""
    arch: str | None = None
    width: int | None = None
    seed: int | None = None
    params: float | None = None
    params_nonembed: float | None = None
    unique_sequences: float | None = None
    samples: float | None = None
    flops: float | None = None
    wall_time_s: float | None = None
    throughput: float | None = None
    dtype: str | None = None
    threads: int | None = None
    versions: dict[str, Any] | None = None
    git_sha: str | None = None
    status: str = "running"
    source: str = "gaitforecast"
    flops_estimated: bool = False
    error: str | None = None
    host: str | None = None
    device: str | None = None
    compiled: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = run_id(self.config)
        if self.status not in RUN_STATUSES:
            raise GaitforecastError(f"run status {self.status!r} is not allowed; use one of {', '.join(RUN_STATUSES)}")

    # What training measures (the worker's part); the sizes and the id stay the planner's.
    MEASURED = ("wall_time_s", "throughput", "dtype", "threads", "versions", "git_sha", "host", "device",
                "compiled")

    def finished(self, measured: Mapping[str, Any], metrics: Mapping[str, float],
                 curve: list[dict[str, Any]]) -> "RunRecord":
        """The record of this run once trained: the measured fields, final metrics and curve, status done."""
        unknown = sorted(set(measured) - set(self.MEASURED))
        if unknown:
            raise GaitforecastError(f"a run's measurements cannot set {', '.join(unknown)}; those are planned")
        return replace(self, **measured, metrics=dict(metrics), curve=list(curve), status="done", error=None)

    def to_row(self, with_results: bool = True) -> dict[str, Any]:
        """The fields as the store writer takes them (``metrics`` and ``curve`` only ``with_results``)."""
        row = {k: v for k, v in self.__dict__.items() if k not in ("metrics", "curve")}
        if with_results:
            row.update(metrics=self.metrics, curve=self.curve)
        return row

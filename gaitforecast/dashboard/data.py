"""Store access for the dashboard: where the store is, whether it changed, and a cached snapshot of its contents.

Use :func:`snapshot` from a page. It never holds the store open: each load is a short read through
:class:`gaitforecast.store.RunStore` (which opens and closes its connection per call), and the result is cached by
the file's content signature (size and mtime of the database and its WAL), so a widget change re-uses the cached
tables while a sweep writing new runs invalidates them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st

from gaitforecast.dashboard.chartdata import store_signature  # noqa: F401  (re-exported; the report uses it too)
from gaitforecast.metrics import MAIN_METRIC
from gaitforecast.store.runstore import is_busy
from gaitforecast.record import RUN_FIELDS  # every runs table has these; any other numeric column is a metric

DEFAULT_STORE = Path("runs") / "gaitforecast.duckdb"
STORE_ENV = "GAITFORECAST_STORE"


def resolve_store_path(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Path:
    """Store path for this app: ``--store PATH`` after ``--`` on the streamlit command line, else the
    GAITFORECAST_STORE environment variable, else runs/gaitforecast.duckdb."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--store", default=None)
    known, _ = parser.parse_known_args(argv)
    if known.store:
        return Path(known.store).expanduser()
    if environ.get(STORE_ENV):
        return Path(environ[STORE_ENV]).expanduser()
    return DEFAULT_STORE


@dataclass
class Snapshot:
    """What the pages need from the store, read once per store signature."""

    path: Path
    runs: pd.DataFrame  # every run, any status
    curves: pd.DataFrame  # learning curves: run_id, step, samples_seen, flops, name, value
    metrics: list[str]  # final metric names, in store order
    mup: list = field(default_factory=list)  # payloads of "mup_check" artifacts, oldest first
    warning: str | None = None  # e.g. the store was busy and an older snapshot is shown
    path_key: str = ""  # resolved path and signature: the cache key the fits use
    signature: tuple = ()

    @property
    def done(self) -> pd.DataFrame:
        """Runs with status 'done' (the ones laws are fitted to)."""
        if self.runs.empty or "status" not in self.runs:
            return self.runs
        return self.runs[self.runs["status"] == "done"].reset_index(drop=True)

    @property
    def imported_only(self) -> bool:
        """True when every run came from `import-runs` (no gaitforecast training runs)."""
        src = self.runs.get("source")
        return bool(len(self.runs)) and src is not None and bool(src.astype(str).str.startswith("import").all())


class StoreProblem(Exception):
    """The store cannot be shown; ``kind`` is 'missing', 'empty' or 'invalid' and the message says what to run."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _read(path: Path) -> Snapshot:
    from gaitforecast.store import RunStore  # imported late: the app must start even while the store is broken

    store = RunStore(path)
    runs = store.runs()
    try:
        curves = store.curves()
    except Exception:  # a store without curves must still show its runs
        curves = pd.DataFrame(columns=["run_id", "step", "samples_seen", "flops", "name", "value"])
    metrics = list(store.metric_names())
    try:
        mup = list(store.artifacts("mup_check"))
    except Exception:
        mup = []
    return Snapshot(path=path, runs=runs, curves=curves, metrics=metrics, mup=mup)


@st.cache_data(max_entries=8, show_spinner="Reading the run store ...")
def _cached_read(path_str: str, signature: tuple) -> Snapshot:
    """Read the store; cached per (path, signature) so widget changes do not touch the file."""
    snap = _read(Path(path_str))
    snap.path_key, snap.signature = path_str, signature
    return snap


@st.cache_resource
def _last_good() -> dict:
    """Last snapshot read per path, shown (with a warning) while a writer holds the store."""
    return {}


def snapshot(path: Path, retries: int = 3) -> Snapshot:
    """Read the store at ``path`` (cached by content). Raises :class:`StoreProblem` with the command to run when
    the store is missing, empty or not a gaitforecast store."""
    path = Path(path)
    hint = f"gaitforecast run-small --store {path}"
    signature = store_signature(path)
    if signature is None:
        raise StoreProblem(
            "missing",
            f"No run store at `{path}`. Create one with `{hint}` (or import results with "
            f"`gaitforecast import-runs FILE --store {path}`), then reload this page.",
        )
    last = _last_good()
    for attempt in range(retries):
        try:
            snap = _cached_read(str(path.resolve()), signature)
            break
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a traceback
            if is_busy(exc) and attempt + 1 < retries:
                time.sleep(0.2 * (attempt + 1))
                signature = store_signature(path) or signature
                continue
            if is_busy(exc) and str(path) in last:
                old = last[str(path)]
                return Snapshot(old.path, old.runs, old.curves, old.metrics, old.mup,
                                warning="The store is busy (a sweep is writing); showing the last snapshot read.",
                                path_key=old.path_key, signature=old.signature)
            if is_busy(exc):
                raise StoreProblem("busy", f"The store `{path}` is busy (another process is writing). "
                                           f"Reload in a moment. ({exc})") from exc
            raise StoreProblem("invalid", f"Cannot read `{path}` as a gaitforecast run store: {exc}") from exc
    last[str(path)] = snap
    if snap.runs.empty:
        raise StoreProblem(
            "empty",
            f"The store `{path}` has no runs yet. Train some with `{hint}` (about 3 minutes with "
            f"`--profile quick`) or import results with `gaitforecast import-runs FILE --store {path}`.",
        )
    return snap


def metric_columns(runs: pd.DataFrame, names: list[str] | None = None) -> list[str]:
    """Final-metric columns of a runs table: the store's metric names present as numeric columns with data."""
    cands = names if names is not None else [c for c in runs.columns if c not in RUN_FIELDS]
    out = []
    for c in cands:
        if c in runs.columns and pd.api.types.is_numeric_dtype(runs[c]) and runs[c].notna().any():
            out.append(c)
    return out


def default_metric(metrics: list[str]) -> str | None:
    """The product's main metric when present, else the first metric."""
    for preferred in (MAIN_METRIC, "loss"):
        if preferred in metrics:
            return preferred
    return metrics[0] if metrics else None

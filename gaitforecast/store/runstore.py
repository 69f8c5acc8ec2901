"""The DuckDB run store: one file holding every run, its final metrics, learning curves and artifacts.

Use :class:`RunStore` wherever runs are written or read. Concurrency rules (measured with duckdb 2.0.1, where a process
holding the file read-write locks out even read-only openers, and an open reader locks out writers):

* One writer at a time across processes: ``with store.writer() as w`` takes ``<store>.lock`` (a filelock) for the
  whole block and says who holds it while waiting. Every ``w.*`` call opens the file, runs one transaction and closes
  it again (about 10 ms), so the file itself is free between writes.
* Readers never take the lock and never keep the file open: each read is one short read-only connection, retried for
  ``read_wait_s`` if a write is in progress, then served from a private copy of the file (a snapshot) so a dashboard
  never waits on or blocks a sweep. A write that meets a reader's connection retries until ``connect_timeout``.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import duckdb
import pandas as pd
from filelock import FileLock, Timeout

from gaitforecast.errors import GaitforecastError
from gaitforecast.store.exchange import (
    ImportPlan, export_frame, file_kind, prepare_import, records_from_frame,
)
from gaitforecast.store.schema import (
    SCHEMA_VERSION, create_schema, describe_error, migrate, read_version,
)
from gaitforecast.store.writer import StoreWriter
from gaitforecast.record import RUN_FIELDS, RUN_STATUSES


T = TypeVar("T")
_LOCKS: dict[str, FileLock] = {}
_LOCKS_GUARD = threading.Lock()


def _process_lock(lock_path: Path) -> FileLock:
    # One FileLock object per path and process, so nested writer() blocks re-enter instead of deadlocking.
    key = str(lock_path.resolve())
    with _LOCKS_GUARD:
        if key not in _LOCKS:
            _LOCKS[key] = FileLock(key)
        return _LOCKS[key]


def is_busy(exc: BaseException) -> bool:
    """True when ``exc`` says another process holds the store file (DuckDB's file lock, or a connection of another
    configuration): worth waiting for, unlike a damaged file. The store and the dashboard both ask this."""
    text = str(exc).lower()
    return "could not set lock" in text or "conflicting lock" in text or "different configuration" in text


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


METRIC_KIND_ARTIFACT = "metric_kind"  # artifact per metric: {"kind": ...}, key = the metric's name


def check_store_path(path: Path) -> None:
    """Refuse, before anything opens it, a store path that cannot be a store file: a dangling or looping
    symbolic link, or something other than a regular file (a FIFO would hang every reader, a device would be
    written into, a directory cannot be one). A path where nothing exists yet is fine (created on first write)."""
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as exc:
            what = "a symbolic-link loop" if exc.errno == errno.ELOOP else "a dangling symbolic link"
            raise GaitforecastError(f"the store path {path} is {what}; point --store at a store file") from exc
    if not os.path.lexists(path):
        return
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return
    raise GaitforecastError(f"the store path {path} is {file_kind(mode)}, not a store file; point --store at a file "
                            "(it is created on the first write)")

# The store's order of runs: oldest first, then by size, then id (a missing value last, as ORDER BY puts NULL),
# written as keys without NULLs so that a page can start after the last run of the one before.
_ORDER_KEYS = ("coalesce(epoch_us(created_at), 9223372036854775807)", "coalesce(params, 'inf'::DOUBLE)",
               "coalesce(samples, 'inf'::DOUBLE)", "id")
_ORDER = ", ".join(_ORDER_KEYS)
_CHUNK_VECTORS = 16  # rows fetched at a time, in DuckDB vectors of 2,048
# An imported run's config is the import's bookkeeping (source, row, values, column map); of it an analysis reads
# only the training run a checkpoint row belongs to (import-runs --run-column).
_BRIEF_CONFIG = ("CASE WHEN source = 'gaitforecast' THEN config WHEN contains(config, '\"run\":') "
                 "THEN json_object('run', json_extract_string(config, '$.run')) END")


def _status_where(status: str | None) -> tuple[str, list[Any]]:
    if status is not None and status not in RUN_STATUSES:
        raise GaitforecastError(f"unknown status {status!r}; use one of {', '.join(RUN_STATUSES)}")
    return ("WHERE status = ?", [status]) if status else ("", [])


def _and(where: str, condition: str) -> str:
    """``where`` (a WHERE clause or nothing) with ``condition`` added."""
    return f"{where} AND {condition}" if where else f"WHERE {condition}"


def _columns(fields: Sequence[str] | None) -> list[str]:
    if fields is None:
        return list(RUN_FIELDS)
    unknown = sorted(set(fields) - set(RUN_FIELDS))
    if unknown:
        raise GaitforecastError(f"unknown run field(s) {', '.join(unknown)}; the fields are: {', '.join(RUN_FIELDS)}")
    return [f for f in RUN_FIELDS if f in fields or f == "id"]


def _page_ids(con: duckdb.DuckDBPyConnection, status: str | None, count: int, after: tuple | None = None,
              newest: bool = False) -> tuple[list[str], tuple | None]:
    """Ids of ``count`` runs in the store's order after the sort key ``after`` (``newest``: the last ``count``),
    and the key of the last one to start the next page from. The sort reads the key columns alone."""
    where, args = _status_where(status)
    if after is not None:
        where = _and(where, f"({_ORDER}) > (?, ?, ?, ?)")
        args = args + list(after)
    order = ", ".join(f"{key} DESC" for key in _ORDER_KEYS) if newest else _ORDER
    rows = con.execute(f"SELECT {_ORDER} FROM runs {where} ORDER BY {order} LIMIT {int(count)}", args).fetchall()
    return [r[3] for r in rows], (tuple(rows[-1]) if rows else None)


def _select_runs(con: duckdb.DuckDBPyConnection, status: str | None, columns: list[str],
                 ids: list[str] | None = None, brief_config: bool = False) -> pd.DataFrame:
    """Runs (``columns``, then one float column per final metric they have, by name) in the store's order; ``ids``:
    only those runs; ``brief_config``: see RunStore.runs. The metrics are pivoted in DuckDB, never held as a long
    table."""
    where, args = _status_where(status)
    if ids is not None:
        where = _and(where, "id IN (SELECT unnest(?::VARCHAR[]))")
        args = args + [list(ids)]
    chosen = f"SELECT id FROM runs {where}"
    names = sorted(r[0] for r in con.execute(
        f"SELECT DISTINCT name FROM metrics WHERE run_id IN ({chosen})", args).fetchall())
    selected = [f"{_BRIEF_CONFIG} AS config" if c == "config" and brief_config else c for c in columns]
    pivot = "".join(f", max(value) FILTER (WHERE name = ?) AS m{i}" for i in range(len(names)))
    joined = (f" LEFT JOIN (SELECT run_id{pivot} FROM metrics WHERE run_id IN ({chosen}) GROUP BY run_id) m"
              " ON m.run_id = id" if names else "")
    metrics = "".join(f", m.m{i}" for i in range(len(names)))
    sql = f"SELECT {', '.join(selected)}{metrics} FROM runs{joined} {where} ORDER BY {_ORDER}"
    frame = _fetch_frame(con.execute(sql, (names + args + args) if names else args))
    frame.columns = [*columns, *names]
    return frame


def _fetch_frame(result: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """A query's rows as one DataFrame, fetched in chunks: ``.df()`` holds DuckDB's copy of every row beside the
    frame (200 MB more at a million runs). A chunk where a text column is all NULL gets it as object, which a
    whole fetch types like the other chunks: it is given their type."""
    parts = [result.fetch_df_chunk(_CHUNK_VECTORS)]
    while len(parts[-1]):
        parts.append(result.fetch_df_chunk(_CHUNK_VECTORS))
    parts = parts[:-1] or parts  # the last chunk is empty (it ended the loop); keep one for the columns
    if len(parts) == 1:
        return parts[0]
    for col in parts[0].columns:
        types = {part[col].dtype for part in parts if part[col].notna().any()}
        if len(types) == 1:
            dtype = types.pop()
            parts = [part if part[col].dtype == dtype else part.astype({col: dtype}) for part in parts]
    return pd.concat(parts, ignore_index=True)


class RunStore:
    """A gaitforecast run store at `path` (default runs/gaitforecast.duckdb); created on the first write."""

    def __init__(
        self, path: Path | str, lock_timeout: float = 60.0, read_wait_s: float = 0.5, connect_timeout: float = 60.0
    ) -> None:
        if not str(path).strip():
            raise GaitforecastError("the store path is empty; pass --store PATH (e.g. runs/gaitforecast.duckdb)")
        self.path = Path(path)
        check_store_path(self.path)
        self.lock_path = Path(f"{self.path}.lock")
        self.owner_path = Path(f"{self.path}.writer.json")
        self.pending_path = Path(f"{self.path}.write-pending")
        self.lock_timeout = lock_timeout
        self.read_wait_s = read_wait_s
        self.connect_timeout = connect_timeout
        self.stats = {"read_retries": 0, "snapshot_reads": 0, "write_retries": 0}
        self._depth = threading.local()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def exists(self) -> bool:
        """True when the store file exists (it may still be refused as not a store when opened)."""
        return self.path.exists()

    # ---------------------------------------------------------------- writing
    @contextmanager
    def writer(
        self, timeout: float | None = None, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[StoreWriter]:
        """Hold the single-writer lock for the block; creates or upgrades the store on entry.

        Waits up to `timeout` seconds (default: the store's lock_timeout) for another writer, calling `on_wait` once
        with a message naming the holder, then raises GaitforecastError. Hold it for a whole sweep: runs left
        'running' in the store then belong to a process that died (see StoreWriter.mark_running_as_interrupted).
        """
        lock = self._acquire(self.lock_timeout if timeout is None else timeout, on_wait or _stderr)
        outermost = lock.lock_counter == 1  # nested blocks (any RunStore object on this path) share the lock
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        try:
            if outermost:
                self._write_owner()
                self._prepare_for_write()
            yield StoreWriter(self)
        finally:
            self._depth.n = depth
            if outermost:
                self.owner_path.unlink(missing_ok=True)
            lock.release()

    def _acquire(self, timeout: float, on_wait: Callable[[str], None]) -> FileLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.lock_path, "a"):
                pass  # fails fast with the real reason where filelock would keep retrying (e.g. /proc)
            lock = _process_lock(self.lock_path)
            try:
                lock.acquire(timeout=0)
                return lock
            except Timeout:
                on_wait(f"store {self.path} is being written by {self._holder()}; waiting up to {timeout:g} s ...")
            lock.acquire(timeout=timeout)
            return lock
        except Timeout:
            raise GaitforecastError(
                f"store {self.path} is still being written by {self._holder()} after waiting {timeout:g} s "
                f"(lock file {self.lock_path}). Let that process finish or stop it, or use another --store."
            ) from None
        except OSError as exc:
            raise GaitforecastError(
                f"cannot write the store at {self.path}: {exc.strerror or exc} (lock file {self.lock_path}). "
                "Choose a writable --store location."
            ) from exc

    @staticmethod
    def _touch(path: Path) -> None:
        try:
            path.touch()
        except OSError:
            pass  # only a hint for readers

    def _holder(self) -> str:
        try:
            info = json.loads(self.owner_path.read_text())
            return f"PID {info['pid']} on {info['host']} ({info['command']}, since {info['since']})"
        except (OSError, ValueError, KeyError):
            return "another process"

    def _write_owner(self) -> None:
        info = {
            "pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else "python",
        }
        try:
            self.owner_path.write_text(json.dumps(info))
        except OSError:
            pass  # holder details are a courtesy for waiting processes; the lock itself is what counts

    def _prepare_for_write(self) -> None:
        if not self.path.exists():
            self._create()
            return
        version = self._read(lambda con: read_version(con, str(self.path)), upgrade=False, snapshot=False)
        if version < SCHEMA_VERSION:
            self._upgrade(version)

    def _create(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.creating")
        try:
            tmp.unlink(missing_ok=True)
            con = duckdb.connect(str(tmp))
            try:
                create_schema(con)
            finally:
                con.close()
            try:
                os.link(tmp, self.path)  # atomic and never replaces a file that appeared meanwhile
            except FileExistsError:
                pass
            except OSError:
                if not self.path.exists():
                    os.replace(tmp, self.path)
        except (OSError, duckdb.Error) as exc:
            raise self._error(exc, "create") from exc
        finally:
            for leftover in (tmp, Path(f"{tmp}.wal")):
                leftover.unlink(missing_ok=True)
        self._prepare_for_write()  # validates whatever is at the path now

    def _upgrade(self, version: int) -> None:
        backup = Path(f"{self.path}.v{version}.bak")
        try:
            if not backup.exists():
                shutil.copyfile(self.path, backup)
        except OSError as exc:
            raise self._error(exc, "back up before upgrading") from exc
        self._connect_write(lambda con: migrate(con, read_version(con, str(self.path))), check=False)

    def _connect_write(self, fn: Callable[[duckdb.DuckDBPyConnection], T], check: bool = True) -> T:
        deadline = time.monotonic() + self.connect_timeout
        pause = 0.01
        try:
            while True:
                try:
                    con = duckdb.connect(str(self.path))
                    break
                except duckdb.Error as exc:
                    if not is_busy(exc) or time.monotonic() > deadline:
                        raise self._error(exc, "write") from exc
                    self._touch(self.pending_path)  # asks new readers to use snapshots until we are in
                    self.stats["write_retries"] += 1
                    time.sleep(pause * random.uniform(0.5, 1.5))
                    pause = min(pause * 2, 0.2)
        finally:
            if self.pending_path.exists():
                self.pending_path.unlink(missing_ok=True)
        try:
            if check and read_version(con, str(self.path)) != SCHEMA_VERSION:
                raise GaitforecastError(f"store {self.path} changed schema while open; rerun the command")
            return fn(con)
        except duckdb.Error as exc:
            raise self._error(exc, "write") from exc
        finally:
            try:
                con.close()  # checkpoints: can fail on a full disk after the commit went to the WAL
            except duckdb.Error as exc:
                raise self._error(exc, "write") from exc

    def _transaction(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `fn` in one transaction on a short read-write connection (only from a StoreWriter)."""
        if not getattr(self._depth, "n", 0):
            raise GaitforecastError("store writes need the writer lock: use `with store.writer() as w:`")

        def run(con: duckdb.DuckDBPyConnection) -> T:
            con.execute("BEGIN TRANSACTION")
            try:
                result = fn(con)
                con.execute("COMMIT")
                return result
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # a failed COMMIT (e.g. disk full) already ended the transaction; keep the first error
                raise

        return self._connect_write(run)

    def _error(self, exc: BaseException, action: str) -> GaitforecastError:
        return describe_error(exc, self.path, action)

    # ---------------------------------------------------------------- reading
    def _read(
        self, fn: Callable[[duckdb.DuckDBPyConnection], T], upgrade: bool = True, snapshot: bool = True
    ) -> T:
        if not self.path.exists():
            raise GaitforecastError(
                f"no run store at {self.path}: run `gaitforecast run-small` or "
                f"`gaitforecast import-runs FILE --store {self.path}` first, or pass --store PATH."
            )
        deadline = time.monotonic() + (self.read_wait_s if snapshot else self.connect_timeout)
        while snapshot and self._write_pending():
            if time.monotonic() > deadline:  # let the waiting writer in; serve this read from a copy
                return self._read_snapshot(fn)
            time.sleep(0.02)
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=True)
                break
            except duckdb.Error as exc:
                if not is_busy(exc):
                    raise self._error(exc, "read") from exc
                if time.monotonic() > deadline:
                    if snapshot:
                        return self._read_snapshot(fn)
                    raise self._error(exc, "read") from exc
                self.stats["read_retries"] += 1
                time.sleep(random.uniform(0.01, 0.04))
        try:
            version = read_version(con, str(self.path))
            if upgrade and version < SCHEMA_VERSION:
                con.close()
                with self.writer(timeout=self.lock_timeout):
                    pass  # upgrading happens on writer entry
                return self._read(fn, upgrade=False, snapshot=snapshot)
            return fn(con)
        except duckdb.Error as exc:
            raise self._error(exc, "read") from exc
        finally:
            con.close()

    def _write_pending(self) -> bool:
        try:  # a marker older than a minute belongs to a writer that died
            return time.time() - self.pending_path.stat().st_mtime < 60
        except OSError:
            return False

    def _read_snapshot(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        # The main file, then its .wal: a writer killed between COMMIT and checkpoint leaves its last commit only in
        # the WAL (DuckDB replays complete transactions of a WAL and refuses one of another checkpoint). A copy that
        # fails to open or verify (caught mid-checkpoint) is tried again; the last try leaves the WAL out.
        last: BaseException | None = None
        for attempt in range(5):
            with tempfile.TemporaryDirectory(prefix="gaitforecast-snap-") as tmp:
                copy = Path(tmp) / "snapshot.duckdb"
                try:
                    shutil.copyfile(self.path, copy)
                    if attempt < 4 and Path(f"{self.path}.wal").exists():
                        shutil.copyfile(f"{self.path}.wal", f"{copy}.wal")
                    con = duckdb.connect(str(copy), read_only=True)
                    try:
                        if read_version(con, str(self.path)) != SCHEMA_VERSION:
                            raise GaitforecastError(f"store {self.path} needs an upgrade; retry when it is free")
                        self.stats["snapshot_reads"] += 1
                        return fn(con)
                    finally:
                        con.close()
                except (OSError, duckdb.Error) as exc:
                    last = exc
            time.sleep(random.uniform(0.05, 0.15))
        raise GaitforecastError(f"store {self.path} is busy and could not be read ({last}); retry in a moment")

    def runs(self, status: str | None = None, fields: Sequence[str] | None = None,
             brief_config: bool = False) -> pd.DataFrame:
        """One row per run (columns of the contract, then one column per final metric), oldest first, then by size.
        ``fields`` reads only those run columns (and ``id``); ``brief_config`` cuts an imported run's config to
        ``{"run": ...}`` where it names a checkpoint's training run (else None): the rest is the import's
        bookkeeping (row, values, column map). A fit reads a few numbers per run, while configs and timestamps
        are most of a large store's bytes."""
        columns = _columns(fields)

        def query(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
            frame = _select_runs(con, status, columns, brief_config=brief_config)
            kinds = con.execute("SELECT key, payload FROM artifacts WHERE kind = ?", [METRIC_KIND_ARTIFACT]).fetchall()
            frame.attrs["metric_kinds"] = {key: json.loads(p)["kind"] for key, p in kinds}  # read by laws.prepare
            return frame

        return self._read(query)

    def count(self, status: str | None = None) -> int:
        """How many runs the store holds (with ``status``)."""
        where, args = _status_where(status)
        return int(self._read(lambda c: c.execute(f"SELECT count(*) FROM runs {where}", args).fetchone()[0]))

    def iter_records(self, status: str | None = None, page: int = 20_000) -> Iterator[dict[str, Any]]:
        """Runs as records (see runs_records), oldest first, read ``page`` runs at a time: memory is one page's
        whatever the store's size. Each page is its own short read, so a sweep writing meanwhile is never
        blocked for long (runs it adds are listed at the end). A config or versions text that is not JSON is
        refused before the first record."""
        self._refuse_bad_json(status)
        after: tuple | None = None
        while True:
            frame, after = self._read(lambda con: self._page(con, status, page, after))
            yield from self._records(frame)
            if len(frame) < page:
                return

    def newest_records(self, count: int, status: str | None = None) -> list[dict[str, Any]]:
        """The ``count`` newest runs as records (see runs_records), oldest of them first."""
        return self._records(self._read(lambda con: self._page(con, status, count, newest=True)[0]))

    @staticmethod
    def _page(con: duckdb.DuckDBPyConnection, status: str | None, count: int, after: tuple | None = None,
              newest: bool = False) -> tuple[pd.DataFrame, tuple | None]:
        ids, last = _page_ids(con, status, count, after, newest)
        return _select_runs(con, status, list(RUN_FIELDS), ids=ids), last

    def _records(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        names = [c for c in frame.columns if c not in RUN_FIELDS]
        try:
            return records_from_frame(frame, names)
        except GaitforecastError as exc:  # a hand-edited row: say which store it is in
            raise GaitforecastError(f"{self.path}: {exc}") from None

    def _refuse_bad_json(self, status: str | None) -> None:
        where, args = _status_where(status)
        where = _and(where, "NOT (coalesce(json_valid(config), true) AND coalesce(json_valid(versions), true))")
        bad = self._read(lambda c: c.execute(f"SELECT id FROM runs {where} ORDER BY id LIMIT 1", args).fetchall())
        if bad:  # read in full to name the field as runs_records does
            self._records(self._read(lambda c: _select_runs(c, None, list(RUN_FIELDS), ids=[bad[0][0]])))

    def metric_kinds(self) -> dict[str, str]:
        """Kinds recorded for metrics (``import-runs --kind``): {metric: "loss" | "accuracy" | "error"}."""
        return {a["key"]: a["payload"]["kind"] for a in self.artifacts(METRIC_KIND_ARTIFACT)}

    def runs_records(self, status: str | None = None) -> list[dict[str, Any]]:
        """Runs as plain dicts (config and versions parsed, timestamps ISO, NaN -> None) with `metrics` name->value.
        For a large store, :meth:`iter_records` lists them a page at a time."""
        return self._records(self.runs(status))

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run as a record (see runs_records), or None if the id is unknown."""
        found = self._records(self._read(lambda con: _select_runs(con, None, list(RUN_FIELDS), ids=[run_id])))
        return found[0] if found else None

    def metric_names(self) -> list[str]:
        """Sorted names of all final metrics in the store."""
        rows = self._read(lambda c: c.execute("SELECT DISTINCT name FROM metrics ORDER BY 1").fetchall())
        return [r[0] for r in rows]

    def curves(self, run_id: str | None = None) -> pd.DataFrame:
        """Learning curves and eval history, long format: run_id, step, samples_seen, flops, name, value."""
        where, args = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        sql = f"SELECT run_id, step, samples_seen, flops, name, value FROM curves {where} ORDER BY run_id, name, step"
        return self._read(lambda c: c.execute(sql, args).df())

    def artifacts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Stored artifacts (muP checks, random-init baselines ...) of `kind`, oldest first, payload parsed."""
        where, args = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self._read(
            lambda c: c.execute(f"SELECT kind, key, created_at, payload FROM artifacts {where} "
                                "ORDER BY created_at, key", args).fetchall()
        )
        return [{"kind": k, "key": key, "created_at": ts.isoformat() if ts else None, "payload": json.loads(p)}
                for k, key, ts, p in rows]

    def done_ids(self) -> set[str]:
        """Ids of finished runs; a resumed sweep skips these."""
        return {r[0] for r in self._read(lambda c: c.execute("SELECT id FROM runs WHERE status = 'done'").fetchall())}

    # ---------------------------------------------------------------- import / export
    def import_runs(
        self, df: pd.DataFrame, source: str, column_map: Mapping[str, str] | None = None,
        metrics: list[str] | None = None,
    ) -> int:
        """Import an external run table all-or-nothing (see store_io.prepare_import); returns the number of runs."""
        return self.write_import(prepare_import(df, source, column_map, metrics))

    def write_import(self, plan: ImportPlan, on_wait: Callable[[str], None] | None = None) -> int:
        """Write a prepared import in one transaction (re-importing the same rows replaces them: no duplicates)."""
        with self.writer(on_wait=on_wait) as w:
            w.write_runs(plan.runs, [(METRIC_KIND_ARTIFACT, m, {"kind": k}) for m, k in plan.kinds.items()])
        return len(plan.runs)

    def export(self, path: Path | str, fmt: str | None = None, status: str | None = None) -> int:
        """Write runs with metrics wide to Parquet or CSV (format from `fmt` or the suffix); returns the row count."""
        return export_frame(self.runs(status), Path(path), fmt)


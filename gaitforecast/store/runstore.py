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
from typing import Any, Callable, Iterator, Mapping, TypeVar

import duckdb
import pandas as pd
from filelock import FileLock, Timeout

from gaitforecast.errors import GaitforecastError
from gaitforecast.store.exchange import (
    ImportPlan, export_frame, file_kind, prepare_import, records_from_frame, wide_runs,
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

    def runs(self, status: str | None = None) -> pd.DataFrame:
        """One row per run (columns of the contract, then one column per final metric), oldest first, then by size."""
        if status is not None and status not in RUN_STATUSES:
            raise GaitforecastError(f"unknown status {status!r}; use one of {', '.join(RUN_STATUSES)}")
        where, args = ("WHERE status = ?", [status]) if status else ("", [])

        def query(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
            runs = con.execute(f"SELECT * FROM runs {where} ORDER BY created_at, params, samples, id", args).df()
            metrics = con.execute(
                f"SELECT run_id, name, value FROM metrics WHERE run_id IN (SELECT id FROM runs {where})", args
            ).df()
            frame = wide_runs(runs[list(RUN_FIELDS)], metrics)
            kinds = con.execute("SELECT key, payload FROM artifacts WHERE kind = ?", [METRIC_KIND_ARTIFACT]).fetchall()
            frame.attrs["metric_kinds"] = {key: json.loads(p)["kind"] for key, p in kinds}  # read by laws.prepare
            return frame

        return self._read(query)

    def metric_kinds(self) -> dict[str, str]:
        """Kinds recorded for metrics (``import-runs --kind``): {metric: "loss" | "accuracy" | "error"}."""
        return {a["key"]: a["payload"]["kind"] for a in self.artifacts(METRIC_KIND_ARTIFACT)}

    def runs_records(self, status: str | None = None) -> list[dict[str, Any]]:
        """Runs as plain dicts (config and versions parsed, timestamps ISO, NaN -> None) with `metrics` name->value."""
        try:
            return records_from_frame(self.runs(status), self.metric_names())
        except GaitforecastError as exc:  # a hand-edited row: say which store it is in
            raise GaitforecastError(f"{self.path}: {exc}") from None

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run as a record (see runs_records), or None if the id is unknown."""
        found = [r for r in self.runs_records() if r["id"] == run_id]
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


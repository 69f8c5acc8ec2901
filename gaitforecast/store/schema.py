"""Tables of the DuckDB run store, the schema version check and the migrations between versions.

Used by :mod:`gaitforecast.store`; nothing here opens files. A store is recognised by its ``meta`` table holding
``app = 'gaitforecast'`` and ``schema_version``. Opening an older version upgrades it step by step (one function per
step in ``MIGRATIONS``); a newer version or a database without the marker is refused before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import duckdb

from gaitforecast.errors import GaitforecastError
from gaitforecast.record import RUN_COLUMNS, RUN_FIELDS

APP_MARKER = "gaitforecast"
SCHEMA_VERSION = 3

# Columns of `runs` in the order runs() shows them, from the run record (gaitforecast.record).
_V1_RUN_COLUMNS = tuple(c for c in RUN_COLUMNS if c[0] not in ("flops_estimated", "compiled"))

_METRICS_DDL = """CREATE TABLE metrics (
    run_id VARCHAR NOT NULL, name VARCHAR NOT NULL, value DOUBLE, PRIMARY KEY (run_id, name))"""
_CURVES_DDL = """CREATE TABLE curves (
    run_id VARCHAR NOT NULL, step BIGINT NOT NULL, samples_seen DOUBLE, flops DOUBLE,
    name VARCHAR NOT NULL, value DOUBLE, PRIMARY KEY (run_id, step, name))"""
_ARTIFACTS_DDL = """CREATE TABLE artifacts (
    kind VARCHAR NOT NULL, key VARCHAR NOT NULL, created_at TIMESTAMP, payload VARCHAR NOT NULL,
    PRIMARY KEY (kind, key))"""


def _runs_ddl(columns: tuple[tuple[str, str], ...]) -> str:
    return "CREATE TABLE runs (" + ", ".join(f"{n} {t}" for n, t in columns) + ")"


def _write_meta(con: duckdb.DuckDBPyConnection, version: int) -> None:
    con.execute(
        "INSERT INTO meta VALUES ('app', ?), ('schema_version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [APP_MARKER, str(version)],
    )


def create_schema(con: duckdb.DuckDBPyConnection, version: int = SCHEMA_VERSION) -> None:
    """Create an empty store of `version` (older versions exist only so tests can exercise migrations)."""
    from gaitforecast import __version__

    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    if version == 1:
        con.execute(_runs_ddl(_V1_RUN_COLUMNS))
        con.execute(_METRICS_DDL)
        con.execute(_CURVES_DDL)
    elif version == SCHEMA_VERSION:
        con.execute(_runs_ddl(RUN_COLUMNS))
        con.execute(_METRICS_DDL)
        con.execute(_CURVES_DDL)
        con.execute(_ARTIFACTS_DDL)
    else:
        raise GaitforecastError(f"cannot create a store of schema version {version}")
    _write_meta(con, version)
    con.execute("INSERT INTO meta VALUES ('created_by', ?)", [f"gaitforecast {__version__}"])


def _migrate_1_to_2(con: duckdb.DuckDBPyConnection) -> None:
    # v2 records whether FLOPs were estimated as 6·N·D and keeps artifacts (muP checks, random-init baselines).
    con.execute("ALTER TABLE runs ADD COLUMN flops_estimated BOOLEAN DEFAULT FALSE")
    con.execute("UPDATE runs SET flops_estimated = FALSE WHERE flops_estimated IS NULL")
    con.execute(_ARTIFACTS_DDL)


def _migrate_2_to_3(con: duckdb.DuckDBPyConnection) -> None:
    # v3 records whether a run's training step ran under torch.compile (runs before it did not).
    con.execute("ALTER TABLE runs ADD COLUMN compiled BOOLEAN DEFAULT FALSE")
    con.execute("UPDATE runs SET compiled = FALSE WHERE compiled IS NULL")


MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


def read_version(con: duckdb.DuckDBPyConnection, path: str) -> int:
    """Return the schema version of an open store, or raise if the database is not a gaitforecast store."""
    not_store = (
        f"{path} is a DuckDB database but not a gaitforecast run store (it has no gaitforecast marker); "
        "it was not changed. Pass another --store path (a new file is created on the first write)."
    )
    try:  # a missing or differently shaped `meta` table means some other database
        meta = dict(con.execute("SELECT CAST(key AS VARCHAR), CAST(value AS VARCHAR) FROM meta").fetchall())
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        raise GaitforecastError(not_store) from exc
    if meta.get("app") != APP_MARKER:
        raise GaitforecastError(not_store)
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError as exc:
        raise GaitforecastError(f"{path}: schema_version {meta.get('schema_version')!r} is not a number") from exc
    if version > SCHEMA_VERSION:
        raise GaitforecastError(
            f"{path} uses store schema version {version}, newer than this gaitforecast understands "
            f"(up to {SCHEMA_VERSION}); the file was not changed. Upgrade gaitforecast "
            "(pip install -U gaitforecast) to read it."
        )
    if version == SCHEMA_VERSION:  # an older store gains its columns by migration; a current one must have them
        have = {str(r[0]) for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'").fetchall()}
        missing = [c for c in RUN_FIELDS if c not in have]
        if missing:
            raise GaitforecastError(
                f"{path}: its runs table lacks the column(s) {', '.join(missing)} (edited by hand or damaged); it "
                "was not changed. Restore a backup (a .v<N>.bak copy, or an export), or start a new --store")
    return version


def migrate(con: duckdb.DuckDBPyConnection, from_version: int) -> None:
    """Upgrade an open store from `from_version` to SCHEMA_VERSION inside one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        for version in range(from_version, SCHEMA_VERSION):
            MIGRATIONS[version](con)
        _write_meta(con, SCHEMA_VERSION)
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # the transaction already ended with the error being raised
        raise


def describe_error(exc: BaseException, path: Path, action: str) -> GaitforecastError:
    """Turn a DuckDB or OS error on the store file into a message that names the problem and the fix."""
    text = str(exc)
    low = text.lower()
    if "no space left" in low or getattr(exc, "errno", None) == 28:
        return GaitforecastError(
            f"disk full while trying to {action} the store {path}; the failed write was rolled back. "
            "Free space (or choose another --store) and rerun."
        )
    if "file too large" in low or getattr(exc, "errno", None) == 27:
        return GaitforecastError(
            f"file size limit reached while trying to {action} the store {path} ({text.strip()}); the failed write "
            "was rolled back. Raise the limit (ulimit -f) or choose another --store, then rerun."
        )
    if "permission denied" in low or "read-only file system" in low or isinstance(exc, PermissionError):
        return GaitforecastError(
            f"cannot {action} the store {path}: the location is read-only ({text.strip()}). "
            "Choose a writable --store path."
        )
    if "not a valid duckdb database" in low:
        return GaitforecastError(
            f"{path} is not a gaitforecast run store (not a DuckDB file); it was not changed. "
            "Pass another --store path."
        )
    if "could not read enough bytes" in low or "corrupt" in low or "checksum" in low:
        return GaitforecastError(
            f"store {path} is damaged or truncated ({text.strip()}); it was not changed. Restore it from a "
            "backup or an export, or use another --store."
        )
    if "Could not set lock" in text or "different configuration" in text:
        return GaitforecastError(
            f"store {path} is held open by another program ({text.strip()}); close it and retry."
        )
    return GaitforecastError(f"cannot {action} the store {path}: {text.strip()}")

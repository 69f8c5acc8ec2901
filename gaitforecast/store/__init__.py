"""The DuckDB run store: :class:`RunStore` (reads, the single writer, import/export) over four modules:

* :mod:`~gaitforecast.store.runstore`  the store file, its locks and reads;
* :mod:`~gaitforecast.store.writer`    the write handle (one transaction per call);
* :mod:`~gaitforecast.store.schema`    tables, schema version and migrations;
* :mod:`~gaitforecast.store.exchange`  import of external run tables, export, records.

The run record itself (its fields, canonical JSON and id) is :mod:`gaitforecast.record`.
"""

from gaitforecast.store.runstore import (  # noqa: F401
    METRIC_KIND_ARTIFACT, RunStore, check_store_path,
)
from gaitforecast.record import RUN_STATUSES  # noqa: F401
from gaitforecast.store.schema import SCHEMA_VERSION  # noqa: F401
from gaitforecast.store.writer import StoreWriter  # noqa: F401
from gaitforecast.record import canonical_json, run_id  # noqa: F401

__all__ = ["RunStore", "StoreWriter", "SCHEMA_VERSION", "RUN_STATUSES", "run_id", "canonical_json",
           "check_store_path", "METRIC_KIND_ARTIFACT"]

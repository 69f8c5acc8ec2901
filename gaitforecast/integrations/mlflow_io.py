"""MLflow in and out: import an experiment's finished runs into the store; log a sweep's runs as they finish.

In: :func:`read_experiment` turns the FINISHED runs of one MLflow experiment into a checked import plan (write it
with ``RunStore.write_import``; the CLI is `gaitforecast import-runs --mlflow URI --experiment NAME`). Each run is
one row: its latest metric values are the metric columns; ``params``, ``samples`` and ``flops`` come from the
metric, param or tag that ``params_key``, ``samples_key`` and ``flops_key`` name (a bare name is looked up in the
metrics, then the params, then the tags; ``params.n_params`` says where); ``arch``, ``seed``, ``width`` and the
other run columns come from a metric, param or tag of that very name. The rows then pass the file import's checks
(:func:`gaitforecast.store.exchange.prepare_import`): the same rules, the same all-or-nothing refusals, each bad row
named by its MLflow run id. A run's id is a hash of the source (experiment and tracking URI) and its MLflow run
id, so importing again adds no duplicates and two runs with equal figures stay two runs; the MLflow ids, params
and tags are kept in the run's config under ``mlflow``.

Out: :class:`MlflowLogger` is run_sweep's ``on_done`` observer (`gaitforecast run-small --mlflow URI`). It is called
after the driver has committed a finished run to the store and only queues it; a background thread logs it (the
config as params, the final metrics, the learning curve as metric history, sizes and FLOPs as metrics, the
store's run id as the tag ``gaitforecast.run_id``). A tracking store that fails is reported once and never slows,
stops or loses the sweep; :meth:`MlflowLogger.finish` also logs the sweep's done runs that the experiment lacks,
so rerunning the same command after an outage fills MLflow in.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.store.exchange import ImportPlan, prepare_import

RUN_ID_TAG = "gaitforecast.run_id"
DEFAULT_KEYS = {"params": "params", "samples": "samples", "flops": "flops"}
_WHERE = ("metrics", "params", "tags")  # where a bare key is looked up, in this order
# Run columns an MLflow run fills from a metric, param or tag of the same name (see exchange's import columns).
_RUN_COLUMNS = ("arch", "seed", "width", "threads", "params_nonembed", "unique_sequences", "wall_time_s",
                "throughput", "dtype", "host", "device", "git_sha")
_SIZE_METRICS = ("params", "params_nonembed", "samples", "flops", "unique_sequences", "wall_time_s", "throughput",
                 "threads")  # logged as metrics at step 0, so the MLflow runs table shows them
_TEXT_TAGS = ("dtype", "device", "host", "git_sha")
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_MAX_PARAM = 500  # MLflow's smallest param value limit across 2.x versions
_MAX_LISTED = 12


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _scheme(uri: str) -> str:
    head, sep, _ = uri.partition(":")
    return head.lower() if sep and len(head) > 1 else ""  # "C:\\runs" is a path, not a scheme


def tracking_uri(uri: str) -> str:
    """``uri`` with a local store's path made absolute, so one store always has one name (and one import source).

    A bare path is a file store, as in MLflow; ``file:`` and ``sqlite:///`` paths are resolved; server URLs and
    other schemes are returned as they are."""
    uri = str(uri).strip()
    if not uri:
        raise GaitforecastError("--mlflow needs a tracking URI, e.g. sqlite:///mlflow.db, file:./mlruns or "
                                "http://HOST:5000")
    scheme = _scheme(uri)
    if scheme == "":
        return Path(uri).expanduser().resolve().as_uri()
    if scheme == "file":
        path = uri[len("file:"):]
        return Path(path[2:] if path.startswith("//") else path).expanduser().resolve().as_uri()
    if scheme == "sqlite" and uri.startswith("sqlite:///") and len(uri) > len("sqlite:///"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).expanduser().resolve())
    return uri


def _local_store(uri: str) -> Path | None:
    """The file or folder of a local tracking store (a normalised URI), None for servers."""
    if _scheme(uri) == "file":
        return Path(url2pathname(urlparse(uri).path))
    if uri.startswith("sqlite:///") and len(uri) > len("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None


def _prepare_mlflow(uri: str) -> None:
    """Refuse at once when MLflow (or the database driver a URI needs) is missing; quiet MLflow's own logging."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise GaitforecastError("--mlflow needs MLflow, which is not installed: pip install 'gaitforecast[mlflow]'"
                                ) from None
    scheme = _scheme(uri)
    if scheme in _DB_SCHEMES:
        import importlib.util

        missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
        if missing:
            raise GaitforecastError(f"the tracking URI {uri} is a database, which MLflow opens through "
                                    f"{' and '.join(missing)} (not installed): pip install 'gaitforecast[mlflow]'")
    if scheme == "file":
        # MLflow 3 refuses file stores unless told otherwise; the user named this one, and it may be years of runs.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if scheme in ("http", "https"):
        # MLflow retries an unreachable server for minutes by default; answer sooner (the variable still overrides).
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." is not for our users
        logging.getLogger(name).setLevel(logging.WARNING)


def _client(uri: str) -> Any:
    _prepare_mlflow(uri)
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri)
    except Exception as exc:  # MLflow raises several types for a store it cannot open
        raise GaitforecastError(f"cannot open the MLflow tracking store {uri}: {_first_line(exc)}") from None


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


# ---------------------------------------------------------------------------------------------------- import
@dataclass
class MlflowImport:
    """A checked import of an MLflow experiment, and what was left out."""

    plan: ImportPlan
    experiment: str
    tracking_uri: str
    not_finished: dict[str, int]  # status -> runs left out (RUNNING, FAILED, KILLED, ...)


def _lookup(run: Any, name: str) -> tuple[str, Any] | None:
    """(where.name, value) of ``name`` in a run: ``metrics.x``/``params.x``/``tags.x`` exactly, else the first of
    metrics, params, tags that has it."""
    where, dot, leaf = name.partition(".")
    if dot and where in _WHERE:
        table = getattr(run.data, where)
        return (name, table[leaf]) if leaf in table else None
    for where in _WHERE:
        table = getattr(run.data, where)
        if name in table:
            return f"{where}.{name}", table[name]
    return None


def _what_runs_have(runs: list[Any]) -> str:
    parts = []
    for where in _WHERE:
        names = sorted({k for r in runs for k in getattr(r.data, where) if not k.startswith("mlflow.")})
        more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
        parts.append(f"{where}: {', '.join(names[:_MAX_LISTED]) or 'none'}{more}")
    return "; ".join(parts)


def _runs_frame(runs: list[Any], keys: Mapping[str, str], explicit: set[str], where: str
                ) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """One row per run: id, the run columns found, then one column per metric not used as a run column; and per
    run where each run column came from."""
    columns: dict[str, list[Any]] = {"id": [r.info.run_id for r in runs]}
    origins: list[dict[str, str]] = [{} for _ in runs]
    used_metrics: set[str] = set()
    wanted = {**keys, **{c: c for c in _RUN_COLUMNS}}
    for column, key in wanted.items():
        found = [_lookup(r, key) for r in runs]
        if column == "wall_time_s":  # else: the run's own start and end times
            found = [f or (("end_time - start_time", (r.info.end_time - r.info.start_time) / 1000.0)
                           if r.info.end_time and r.info.start_time else None) for f, r in zip(found, runs)]
        if column == "git_sha":
            found = [f or _lookup(r, "tags.mlflow.source.git.commit") for f, r in zip(found, runs)]
        if not any(found):
            if column in explicit:
                raise GaitforecastError(f"no finished run of {where} has a metric, param or tag named {key!r} "
                                        f"(--{column}-key); the runs have {_what_runs_have(runs)}")
            continue
        columns[column] = [f[1] if f else None for f in found]
        for origin, f in zip(origins, found):
            if f:
                origin[column] = f[0]
                if f[0].startswith("metrics."):
                    used_metrics.add(f[0][len("metrics."):])
    if "params" not in columns:
        raise GaitforecastError(f"no finished run of {where} has a metric, param or tag named {keys['params']!r} "
                                f"(the parameter count); pass --params-key NAME. The runs have "
                                f"{_what_runs_have(runs)}")
    if "samples" not in columns and "flops" not in columns:
        raise GaitforecastError(f"no finished run of {where} has a metric, param or tag named "
                                f"{keys['samples']!r} or {keys['flops']!r} (samples seen or training FLOPs); pass "
                                f"--samples-key NAME or --flops-key NAME. The runs have {_what_runs_have(runs)}")
    metric_names = sorted({k for r in runs for k in r.data.metrics} - used_metrics - set(columns))
    for name in metric_names:
        columns[name] = [r.data.metrics.get(name, math.nan) for r in runs]
    return pd.DataFrame(columns), origins


def read_experiment(uri: str, experiment: str, *, params_key: str | None = None, samples_key: str | None = None,
                    flops_key: str | None = None, metrics: list[str] | None = None,
                    kinds: Mapping[str, str] | None = None, source: str | None = None) -> MlflowImport:
    """The finished runs of MLflow ``experiment`` at ``uri`` as a checked import (see the module docstring).

    Raises GaitforecastError when MLflow is missing, the store or experiment does not exist, a key is not found,
    or a run breaks an import rule (then nothing is imported)."""
    uri = tracking_uri(uri)
    local = _local_store(uri)
    if local is not None and not local.exists():
        raise GaitforecastError(f"no MLflow tracking store at {local}; give an existing one (file:PATH of an mlruns "
                                "folder, sqlite:///PATH of a database) or a tracking server's URL")
    given = {"params": params_key, "samples": samples_key, "flops": flops_key}
    keys = {name: key or DEFAULT_KEYS[name] for name, key in given.items()}
    client = _client(uri)
    where = f"MLflow experiment {experiment!r} at {uri}"
    try:
        found = client.get_experiment_by_name(experiment)
        names = [] if found is not None else sorted(e.name for e in client.search_experiments())
        runs = _all_runs(client, found.experiment_id) if found is not None else []
    except Exception as exc:  # unreachable server, damaged store, refused credentials ...
        raise GaitforecastError(f"cannot read {where}: {_first_line(exc)}") from None
    if found is None:
        raise GaitforecastError(f"no MLflow experiment named {experiment!r} at {uri}; experiments there: "
                                f"{', '.join(names) or 'none'}")
    finished = sorted((r for r in runs if r.info.status == "FINISHED"),
                      key=lambda r: (r.info.start_time or 0, r.info.run_id))
    not_finished = dict(Counter(r.info.status for r in runs if r.info.status != "FINISHED"))
    if not finished:
        left = f" ({', '.join(f'{n} {s}' for s, n in sorted(not_finished.items()))})" if not_finished else ""
        raise GaitforecastError(f"{where} has no finished runs{left}; nothing to import")
    frame, origins = _runs_frame(finished, keys, {n for n, k in given.items() if k}, where)
    if metrics:
        metric_columns = [c for c in frame.columns if c not in ("id", *keys, *_RUN_COLUMNS)]
        absent = [m for m in metrics if m not in metric_columns]
        if absent:
            raise GaitforecastError(f"metric(s) {', '.join(absent)} not among the metrics of {where}: "
                                    f"{', '.join(metric_columns) or 'none'}")
    plan = prepare_import(frame, source or f"mlflow:{experiment}@{uri}", None, metrics, kinds, key_column="id")
    by_id = {r.info.run_id: (r, origin) for r, origin in zip(finished, origins)}
    for run in plan.runs:
        mlflow_run, origin = by_id[run["config"]["original_id"]]
        run["config"]["columns"] = origin
        run["config"]["mlflow"] = {
            "run_id": mlflow_run.info.run_id, "run_name": mlflow_run.info.run_name, "experiment": experiment,
            "experiment_id": found.experiment_id, "tracking_uri": uri, "params": dict(mlflow_run.data.params),
            "tags": {k: v for k, v in mlflow_run.data.tags.items() if not k.startswith("mlflow.")},
        }
    return MlflowImport(plan, experiment, uri, not_finished)


# ---------------------------------------------------------------------------------------------------- logging
def _flat(config: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    """A nested config as MLflow params: ("data.pool_sequences", "8192"), ...; values as JSON unless text."""
    for key, value in sorted(config.items()):
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            yield f"{prefix}{key}", text[:_MAX_PARAM]


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def metric_points(row: Mapping[str, Any], metrics: Mapping[str, Any], curves: list[Mapping[str, Any]],
                  start_ms: int, end_ms: int) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp ms, step) of everything logged as MLflow metrics for one run.

    Every curve point is a history point (timestamps spread over the run's wall time by step). A final metric
    that is not its curve's last value (train_loss: the mean of the last steps) gets one more point at the last
    step and the end time, so it is the value MLflow shows as the run's; sizes and FLOPs are points at step 0."""
    last_step = max((int(p["step"]) for p in curves), default=0)
    span = max(end_ms - start_ms - 1, 0)
    points, last = [], {}
    for p in curves:
        if not _finite(p["value"]):
            continue
        step = int(p["step"])
        points.append((str(p["name"]), float(p["value"]), start_ms + (span * step // last_step if last_step else 0),
                       step))
        if step >= last.get(p["name"], (-1, None))[0]:
            last[p["name"]] = (step, float(p["value"]))
    for name, value in metrics.items():
        if _finite(value) and last.get(name, (None, None))[1] != float(value):
            points.append((name, float(value), end_ms, last_step))
    points += [(name, float(row[name]), end_ms, 0) for name in _SIZE_METRICS if _finite(row.get(name))]
    return points


def _log_run(client: Any, experiment_id: str, row: Mapping[str, Any], metrics: Mapping[str, Any],
             curves: list[Mapping[str, Any]], store: str) -> str:
    """Log one finished run; returns its MLflow run id. A run left half-logged is marked FAILED."""
    from mlflow.entities import Metric, Param

    from gaitforecast import __version__

    config = row.get("config") or {}
    config = json.loads(config) if isinstance(config, str) else dict(config)
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - int(1000 * float(row["wall_time_s"])) if _finite(row.get("wall_time_s")) else end_ms
    tags = {RUN_ID_TAG: str(row["id"]), "gaitforecast.store": store, "gaitforecast.version": __version__}
    tags.update({name: str(row[name]) for name in _TEXT_TAGS if row.get(name) not in (None, "")})
    name = (f"{config['arch']} w{config['width']} f{config['fraction']:g} s{config['seed']}"
            if {"arch", "width", "fraction", "seed"} <= set(config) else str(row["id"]))
    run_id = client.create_run(experiment_id, start_time=start_ms, tags=tags, run_name=name).info.run_id
    try:
        params = [Param(k, v) for k, v in _flat(config)]
        for i in range(0, len(params), 100):  # MLflow's batch limits: 100 params, 1,000 metrics per request
            client.log_batch(run_id, params=params[i:i + 100])
        points = [Metric(k, v, ts, step) for k, v, ts, step in metric_points(row, metrics, curves, start_ms, end_ms)]
        for i in range(0, len(points), 1000):
            client.log_batch(run_id, metrics=points[i:i + 1000])
        client.set_terminated(run_id, "FINISHED", end_time=end_ms)
    except Exception:
        try:
            client.set_terminated(run_id, "FAILED")
        except Exception:  # the store is failing anyway; the first error is the one to report
            pass
        raise
    return run_id


def logged_run_ids(client: Any, experiment_id: str) -> set[str]:
    """Store run ids that FINISHED MLflow runs of the experiment carry (runs already logged)."""
    return {r.data.tags[RUN_ID_TAG] for r in _all_runs(client, experiment_id)
            if r.info.status == "FINISHED" and RUN_ID_TAG in r.data.tags}


class MlflowLogger:
    """run_sweep's ``on_done`` observer: queue each finished run; a background thread logs it (module docstring).

    ``note`` is called (from the thread that calls the logger) once, on the first failure."""

    def __init__(self, uri: str, experiment: str, store: Path | str,
                 note: Callable[[str], None] = lambda text: None) -> None:
        self.uri = tracking_uri(uri)
        _prepare_mlflow(self.uri)  # MLflow missing: refused now; a store that fails later never stops the sweep
        if not str(experiment).strip():
            raise GaitforecastError("--experiment must name an MLflow experiment")
        self.experiment = str(experiment)
        self.store = str(Path(store).resolve())
        self._note = note
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._queued: list[str] = []
        self.logged: list[str] = []
        self.already_logged: list[str] = []
        self.not_logged: list[str] = []
        self.error: str | None = None
        self._reported = self.noted = False

    def __call__(self, row: Mapping[str, Any], metrics: Mapping[str, Any],
                 curves: list[Mapping[str, Any]]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="mlflow-logger", daemon=True)
            self._thread.start()
        self._queued.append(str(row["id"]))
        self._queue.put((dict(row), dict(metrics), [dict(p) for p in curves]))
        self.report()

    def report(self) -> None:
        """Note the first failure (once)."""
        if self.error is not None and not self._reported:
            self._reported = True
            self._note(f"MLflow: logging to {self.uri} failed ({self.error}); the runs are safe in the store and "
                       "the sweep goes on without MLflow. Rerun the same command when the tracking store works "
                       "to log them.")

    def _work(self) -> None:
        client, experiment_id, have = None, "", set()
        while True:
            item = self._queue.get()
            if item is None:
                return
            row, metrics, curves = item
            rid = str(row["id"])
            if self.error is not None:
                self.not_logged.append(rid)
                continue
            try:
                if client is None:
                    client = _client(self.uri)
                    found = client.get_experiment_by_name(self.experiment)
                    experiment_id = (found.experiment_id if found is not None
                                     else client.create_experiment(self.experiment))
                    have = logged_run_ids(client, experiment_id)
                if rid in have:
                    self.already_logged.append(rid)
                    continue
                _log_run(client, experiment_id, row, metrics, curves, self.store)
                have.add(rid)
                self.logged.append(rid)
            except Exception as exc:  # anything MLflow raises: report once, keep the sweep going
                self.error = _first_line(exc)
                self.not_logged.append(rid)

    def finish(self, store: Any, run_ids: list[str], timeout: float = 60.0) -> dict[str, Any]:
        """Queue the done runs of ``run_ids`` not logged in this sweep (skipped as already done, say), wait up to
        ``timeout`` seconds for the queue, and say what was logged."""
        self.noted = self._reported  # the failure was already noted during the sweep
        self._reported = True  # from here on the caller's summary says what failed; no note on top of it
        queued = set(self._queued)
        wanted = [rid for rid in run_ids if rid not in queued]
        if wanted:
            done = {r["id"]: r for r in store.runs_records("done") if r["id"] in set(wanted)}
            curves = store.curves()
            curves = curves[curves["run_id"].isin(list(done))]
            by_run = {rid: part.drop(columns="run_id").to_dict("records") for rid, part in curves.groupby("run_id")}
            for rid in wanted:
                if rid in done:
                    self(done[rid], done[rid]["metrics"], by_run.get(rid, []))
        pending = 0
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            pending = len(self._queued) - len(self.logged) - len(self.already_logged) - len(self.not_logged)
        return {"tracking_uri": self.uri, "experiment": self.experiment, "logged": len(self.logged),
                "already_logged": len(self.already_logged), "not_logged": len(self.not_logged) + pending,
                "error": self.error}

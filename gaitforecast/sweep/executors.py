"""Run planned runs in parallel workers while the driver process stays the only writer of the store.

Use :func:`run_sweep`. Life of a run: the driver writes it as ``running`` (and clears old figures) right before
handing it to a worker; the worker trains it and returns a :class:`~gaitforecast.train.loop.RunResult`; the driver
writes ``done`` plus metrics and curves in one transaction. Finished runs are never touched again: a re-run skips
their ids. A run whose worker dies is marked ``interrupted`` (the rest of the sweep goes on); Ctrl-C (or SIGTERM)
marks the runs in flight ``interrupted``, stops the workers and re-raises; a run that raises is ``failed`` with
the error text. Rows left ``running`` by a driver that was killed outright are marked ``interrupted`` on the next
start (the writer lock, held for the whole sweep, proves no other driver owns them).

Backends share one tiny interface (:class:`Backend`: submit, poll, stop): ``local`` (a spawn process pool with
threads pinned per worker), ``ray`` (Ray tasks; ``pip install gaitforecast[ray]``) and ``slurm`` (one Slurm job
per run through submitit; ``pip install gaitforecast[slurm]``).

``on_done`` (optional) observes each run once the driver has committed it as done (the MLflow logger uses it); an
exception it raises is noted once and never stops the sweep or touches the store.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from gaitforecast.errors import GaitforecastError
from gaitforecast.sweep.backend import Backend, Outcome, Task  # noqa: F401  (Task, Outcome: re-exported)
from gaitforecast.sweep.planner import PlannedRun

BACKENDS = ("local", "ray", "slurm")
BASELINE_KIND = "random_init"
RAW_BASELINE_KIND = "raw_baseline"


class Reporter(Protocol):
    """Receives sweep progress (the CLI's Rich display implements it; NullReporter ignores everything)."""

    def start(self, total: int, skipped: int) -> None: ...
    def run_started(self, run: PlannedRun) -> None: ...
    def event(self, event: dict[str, Any]) -> None: ...
    def run_finished(self, run: PlannedRun, status: str, metrics: dict[str, float], wall_s: float) -> None: ...
    def note(self, text: str) -> None: ...


class NullReporter:
    def start(self, total: int, skipped: int) -> None: ...
    def run_started(self, run: PlannedRun) -> None: ...
    def event(self, event: dict[str, Any]) -> None: ...
    def run_finished(self, run: PlannedRun, status: str, metrics: dict[str, float], wall_s: float) -> None: ...
    def note(self, text: str) -> None: ...


def cpu_cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def layout(workers: int | None, runs: int, cuda: bool = False, threads: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker): workers x threads <= cores, never more workers than runs.

    ``threads`` pins the per-worker thread count instead (e.g. 1 thread on any layout makes runs bit-identical
    between ``--workers 1`` and ``--workers 2``; float sums depend on the thread count).
    """
    cores = cpu_cores()
    if workers is not None and workers < 1:
        raise GaitforecastError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise GaitforecastError(f"--threads must be at least 1, got {threads}")
    if workers is None:
        workers = 1 if cuda else (cores if cores <= 4 else max(1, cores // 2))
    workers = max(1, min(workers, max(runs, 1)))
    return workers, threads or max(1, cores // workers)


def make_backend(name: str, workers: int, threads: int, options: dict[str, Any] | None = None) -> Backend:
    """Start the named backend with ``workers`` parallel runs of ``threads`` threads each (``options``: the
    slurm backend's job settings, see slurm_backend.SlurmBackend)."""
    if name == "local":
        from gaitforecast.sweep.local import LocalBackend

        return LocalBackend(workers, threads)
    if name == "ray":
        from gaitforecast.sweep.ray_backend import RayBackend

        return RayBackend(workers, threads)
    if name == "slurm":
        from gaitforecast.sweep.slurm_backend import SlurmBackend

        return SlurmBackend(workers, threads, **(options or {}))
    raise GaitforecastError(f"unknown backend {name!r}; allowed values: {', '.join(BACKENDS)}")


def baseline_key(config: dict[str, Any]) -> str:
    """Artifact key of the random-init baseline of a run's (arch, width, frames, suites)."""
    d = config["data"]
    return f"{config['arch']}:w{config['width']}:T{config['model']['frames']}:{d['suite_size']}:seed{d['world_seed']}"


def raw_baseline_key(data: dict[str, Any]) -> str:
    """Artifact key of the raw-joint nearest-neighbour baseline of a data config: its suites, nothing trained.

    The synthetic suites depend on (suite_size, world_seed) only; a real CASIA-B suite also on its path and on the
    frames it is read at (``max(pool_frames, frames)``, see ``load_suites``), so those join the key when it is set.
    """
    key = f"{data['suite_size']}:seed{data['world_seed']}"
    casia = data.get("casia_b_path") or ""
    if casia:
        key += f":casia_b={casia}:F{max(data['pool_frames'], data['frames'])}"
    return key


@dataclass
class SweepSummary:
    """What happened in a sweep (the `--json` document of run-small is built from it)."""

    planned: int
    skipped: int
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    stale_marked_interrupted: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0
    workers: int = 1
    threads_per_worker: int = 1
    backend: str = "local"
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def _running_row(run: PlannedRun, threads: int) -> dict[str, Any]:
    import platform

    return run.record(threads=threads, host=platform.node()).to_row(with_results=False)


def run_sweep(runs: list[PlannedRun], store: Any, *, cache_dir: Path, workers: int | None = None,
              backend: str = "local", reporter: Reporter | None = None, device: str | None = None,
              eval_batch: int = 1024, lock_timeout: float = 7 * 24 * 3600.0,
              threads: int | None = None, backend_options: dict[str, Any] | None = None, compile: bool = False,
              on_done: Callable[[dict[str, Any], dict[str, float], list[dict[str, Any]]], None] | None = None,
              ) -> SweepSummary:
    """Run every planned run that is not done yet; write each result as it arrives. Re-raises KeyboardInterrupt.

    ``on_done(run_row, metrics, curves)`` is called after each run is committed as done (see the module doc)."""
    from gaitforecast.sweep.baselines import raw_baseline_payload
    from gaitforecast.train.evaluate import prepare_data
    from gaitforecast.train.loop import pick_device

    rep = reporter or NullReporter()
    if backend not in BACKENDS:
        raise GaitforecastError(f"unknown backend {backend!r}; allowed values: {', '.join(BACKENDS)}")
    started = time.perf_counter()
    with store.writer(timeout=lock_timeout, on_wait=rep.note) as w:
        stale = w.mark_running_as_interrupted()
        done_ids = store.done_ids()
        todo = [r for r in runs if r.id not in done_ids]
        n_workers, threads = layout(workers, len(todo), cuda=pick_device(device).type == "cuda", threads=threads)
        summary = SweepSummary(planned=len(runs), skipped=len(runs) - len(todo), stale_marked_interrupted=stale,
                               workers=n_workers, threads_per_worker=threads, backend=backend)
        rep.start(len(runs), summary.skipped)
        if stale:
            rep.note(f"{len(stale)} run(s) left 'running' by a stopped sweep were marked interrupted; "
                     "they are redone now")
        if not todo:
            summary.wall_time_s = time.perf_counter() - started
            return summary
        have_baseline = {a["key"] for a in store.artifacts(BASELINE_KIND)}
        have_raw = {a["key"] for a in store.artifacts(RAW_BASELINE_KIND)}
        for data in {tuple(sorted(r.config["data"].items())) for r in todo}:
            rep.note("preparing data (pool and suites; cached on disk after the first time) ...")
            prepare_data(cache_dir, dict(data))
            raw_key = raw_baseline_key(dict(data))
            if raw_key not in have_raw:
                w.put_artifact(RAW_BASELINE_KIND, raw_baseline_payload(cache_dir, dict(data)), key=raw_key)
                have_raw.add(raw_key)
        pending = list(todo)
        in_flight: dict[str, PlannedRun] = {}
        runner = make_backend(backend, n_workers, threads, backend_options)
        observe = _guarded(on_done, rep)
        try:
            while pending or in_flight:
                while pending and len(in_flight) < n_workers:
                    run = pending.pop(0)
                    key = baseline_key(run.config)
                    want = key not in have_baseline
                    have_baseline.add(key)
                    w.upsert_run(_running_row(run, threads))
                    w.clear_results(run.id)
                    runner.submit(Task(run.id, run.config, str(cache_dir), threads, want, device, eval_batch, compile))
                    in_flight[run.id] = run
                    rep.run_started(run)
                outcomes = runner.poll(0.25)
                for event in runner.drain_events():
                    rep.event(event)
                for out in outcomes:
                    run = in_flight.pop(out.run_id)
                    row = _record(w, run, out, summary, rep)
                    if row is not None:
                        observe(row)
        except BaseException:
            for rid in list(in_flight):
                w.set_status(rid, "interrupted", error="sweep stopped (Ctrl-C or signal) while this run trained")
                summary.interrupted.append(rid)
            raise
        finally:
            runner.stop()
            summary.wall_time_s = time.perf_counter() - started
    return summary


def _record(w: Any, run: PlannedRun, out: Outcome, summary: SweepSummary,
            rep: Reporter) -> dict[str, Any] | None:
    """Write a finished run (the planner's record completed by the worker's measurements); its row, or None for
    a run that failed or died."""
    if out.error is not None:
        status = "interrupted" if out.worker_died else "failed"
        w.set_status(run.id, status, error=out.error[-4000:])
        (summary.interrupted if out.worker_died else summary.failed).append(run.id)
        rep.run_finished(run, status, {}, 0.0)
        rep.note(f"run {run.label()} ({run.id}) {status}: {out.error.strip().splitlines()[-1]}")
        return None
    result = out.result
    record = run.record().finished(result.measured, result.metrics, result.curves)
    row = record.to_row()
    w.upsert_run(row)
    if result.baseline is not None:
        w.put_artifact(BASELINE_KIND, result.baseline, key=baseline_key(run.config))
    summary.done.append(run.id)
    summary.results[run.id] = {"metrics": result.metrics, "wall_time_s": record.wall_time_s,
                               "throughput": record.throughput}
    rep.run_finished(run, "done", result.metrics, record.wall_time_s)
    return row


def _guarded(on_done: Callable[..., None] | None, rep: Reporter) -> Callable[[dict[str, Any]], None]:
    """``on_done`` called with a committed run row; its first exception is noted, later ones are ignored."""
    failed: list[BaseException] = []

    def observe(row: dict[str, Any]) -> None:
        if on_done is None:
            return
        try:
            on_done({k: v for k, v in row.items() if k not in ("metrics", "curve")}, row["metrics"], row["curve"])
        except Exception as exc:  # an observer (MLflow ...) must never stop the sweep; the store has the run
            if not failed:
                rep.note(f"after a run finished, {getattr(on_done, '__name__', 'an observer')} failed: {exc}; "
                         "the run is safe in the store, the sweep goes on")
            failed.append(exc)

    return observe

"""Ray backend: each run is a Ray task with ``num_cpus = threads``; results return to the driver, which writes.

Use ``--backend ray``. Connects to the cluster in ``RAY_ADDRESS`` when set, else reuses an initialised Ray, else
starts a local Ray with ``workers x threads`` CPUs (and shuts it down afterwards). Ray reuses worker processes, so
threads are pinned at the start of every task, not per process. Needs ``pip install 'gaitforecast[ray]'``.
"""

from __future__ import annotations

import os
from typing import Any

from gaitforecast.errors import GaitforecastError
from gaitforecast.sweep.backend import Outcome, Task, drain, error_text, execute_task

_LOCAL_OBJECT_STORE = 256 * 1024**2  # results are small; keep Ray's default (30 % of RAM) out of the way


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise GaitforecastError(
            "the ray backend needs Ray, which is not installed: pip install 'gaitforecast[ray]' "
            "(or use --backend local)"
        ) from None
    return ray


def _ray_work(task: Task, events: Any) -> Outcome:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(task.threads)
    try:
        return Outcome(task.run_id, result=execute_task(task, events))
    except Exception as exc:
        return Outcome(task.run_id, error=error_text(exc))


class RayBackend:
    """Ray-task backend (see module docstring)."""

    def __init__(self, workers: int, threads: int) -> None:
        ray = self._ray = _import_ray()
        self.workers, self.threads = workers, threads
        self._owns_ray = False
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=workers * threads, object_store_memory=_LOCAL_OBJECT_STORE,
                         include_dashboard=False, log_to_driver=False)
            self._owns_ray = True
        self._remote = ray.remote(num_cpus=threads, max_retries=0)(_ray_work)
        self._refs: dict[Any, str] = {}
        try:
            from ray.util.queue import Queue

            self._events: Any = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        except Exception:  # progress is optional; results still come back
            self._events = None

    def submit(self, task: Task) -> None:
        self._refs[self._remote.remote(task, self._events)] = task.run_id

    def poll(self, timeout: float) -> list[Outcome]:
        ray = self._ray
        if not self._refs:
            return []
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            rid = self._refs.pop(ref)
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayError as exc:  # worker crashed or was killed: the run is interrupted
                out.append(Outcome(rid, error=f"the Ray worker died during this run: {exc}", worker_died=True))
        return out

    def drain_events(self) -> list[dict[str, Any]]:
        return drain(self._events) if self._events is not None else []

    def stop(self) -> None:
        ray = self._ray
        for ref in list(self._refs):
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        self._refs.clear()
        if self._events is not None:
            try:
                self._events.shutdown(force=True)
            except Exception:
                pass
        if self._owns_ray:
            ray.shutdown()

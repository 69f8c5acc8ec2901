"""The default backend: a pool of spawned worker processes on this machine, threads pinned per worker.

Each worker gets ``threads`` intra-op threads (OMP/MKL variables set before it imports torch, and
``torch.set_num_threads`` at start), ignores Ctrl-C (the driver handles it and stops the pool), and exits by itself
if the driver disappears (a killed driver must not leave orphans training on the cores). A worker that dies breaks
the pool: every run in flight comes back as ``worker_died`` and the next submit starts a fresh pool.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from gaitforecast.sweep.backend import Outcome, Task, drain, error_text, execute_task

_EVENTS: Any = None
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        time.sleep(1.0)


def _init_worker(threads: int, events: Any, parent_pid: int) -> None:
    global _EVENTS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    _EVENTS = events
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _work(task: Task) -> Outcome:
    try:
        return Outcome(task.run_id, result=execute_task(task, _EVENTS))
    except Exception as exc:  # the run failed; the worker stays healthy
        return Outcome(task.run_id, error=error_text(exc))


class LocalBackend:
    """Process-pool backend (see module docstring)."""

    def __init__(self, workers: int, threads: int) -> None:
        self.workers, self.threads = workers, threads
        self._ctx = mp.get_context("spawn")
        self._events = self._ctx.Queue()
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, tuple[str, ProcessPoolExecutor]] = {}

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=self._ctx, initializer=_init_worker,
                                             initargs=(self.threads, self._events, os.getpid()))
        return self._pool

    def submit(self, task: Task) -> None:
        saved = {var: os.environ.get(var) for var in _THREAD_VARS}
        os.environ.update({var: str(self.threads) for var in _THREAD_VARS})  # inherited by spawned workers
        try:
            try:
                pool = self._ensure_pool()
                future = pool.submit(_work, task)
            except BrokenProcessPool:
                # A worker died between the last poll and this submit: its run comes back as worker_died from
                # poll(); this task goes to a fresh pool.
                self._terminate()
                pool = self._ensure_pool()
                future = pool.submit(_work, task)
            self._futures[future] = (task.run_id, pool)
        finally:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value

    def poll(self, timeout: float) -> list[Outcome]:
        if not self._futures:
            time.sleep(timeout)
            return []
        finished, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out, broken = [], False
        for fut in finished:
            rid, pool = self._futures.pop(fut)
            try:
                out.append(fut.result())
            except BrokenProcessPool:
                broken = broken or pool is self._pool  # an already replaced pool needs no second stop
                out.append(Outcome(rid, error="the worker process died (killed, or out of memory) during this run",
                                   worker_died=True))
            except Exception as exc:  # e.g. a result that could not be unpickled
                out.append(Outcome(rid, error=error_text(exc)))
        if broken:
            self._terminate()
        return out

    def drain_events(self) -> list[dict[str, Any]]:
        return drain(self._events)

    def _terminate(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list(getattr(pool, "_processes", {}).values())  # no public API to stop busy workers in 3.11
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)

    def stop(self) -> None:
        if self._futures:
            self._terminate()
            self._futures.clear()
        elif self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._events.close()
        self._events.join_thread()

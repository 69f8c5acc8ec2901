"""The worker side of a sweep and the interface every backend implements; no backend imports the driver.

A :class:`Task` is what a worker needs for one run (picklable); :func:`execute_task` trains it there and returns
the train loop's RunResult; an :class:`Outcome` carries that result (or the error text) back. A backend
(:class:`Backend`: submit, poll, drain_events, stop) moves tasks to workers and outcomes back; the driver
(:mod:`gaitforecast.sweep.executors`) picks one by name and stays the only writer of the store.
"""

from __future__ import annotations

import queue
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Task:
    """What a worker needs for one run (picklable)."""

    run_id: str
    config: dict[str, Any]
    cache_dir: str
    threads: int
    want_baseline: bool
    device: str | None = None
    eval_batch: int = 1024
    compile: bool = False


@dataclass
class Outcome:
    """A finished task: a result, or the error text and whether the worker itself died."""

    run_id: str
    result: Any = None
    error: str | None = None
    worker_died: bool = False


class Backend(Protocol):
    def submit(self, task: Task) -> None: ...
    def poll(self, timeout: float) -> list[Outcome]: ...
    def drain_events(self) -> list[dict[str, Any]]: ...
    def stop(self) -> None: ...


def execute_task(task: Task, events: Any = None) -> Any:
    """Worker side: train one run (threads pinned for this task); progress events go to ``events`` if given."""
    from gaitforecast.train.loop import train_run

    def progress(event: dict[str, Any]) -> None:
        if events is not None:
            try:
                events.put_nowait(event)
            except Exception:  # progress is best effort; a full or closed queue must not kill a run
                pass

    return train_run(task.config, Path(task.cache_dir), threads=task.threads, device=task.device,
                     want_baseline=task.want_baseline, progress=progress, eval_batch=task.eval_batch,
                     compile=task.compile)


def error_text(exc: BaseException) -> str:
    """Error text a worker sends back for a run that raised."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def drain(q: Any) -> list[dict[str, Any]]:
    """All events currently in a queue, without blocking."""
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except (queue.Empty, EOFError, OSError):
            return out
        except Exception:  # ray.util.queue.Empty and friends
            return out

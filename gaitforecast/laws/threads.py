"""One BLAS thread for the law engine.

The engine's linear algebra is many small solves (5 x 5 systems for a thousand resamples at once): BLAS threads
only contend there. On a busy 2-core machine a fit with the default thread pool took 127 s wall / 99 s CPU
against 31 s / 15 s with one BLAS thread (same result; idle, both 15 s; measured 2026-11-27). Every public entry
point of the engine runs under :func:`single_blas_thread`, as the sweep pins its workers' threads.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable, TypeVar

from threadpoolctl import threadpool_limits

F = TypeVar("F", bound=Callable)
_ACTIVE = threading.local()  # set while an outer entry point holds the limit: inner ones skip threadpoolctl


def single_blas_thread(fn: F) -> F:
    """Run ``fn`` with the BLAS thread pools limited to one thread (restored afterwards). Nested entry points
    (a backtest's fits and bootstraps) run under the outermost limit without asking threadpoolctl again."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if getattr(_ACTIVE, "on", False):
            return fn(*args, **kwargs)
        _ACTIVE.on = True
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                return fn(*args, **kwargs)
        finally:
            _ACTIVE.on = False

    return wrapper  # type: ignore[return-value]

"""Progress of long engine calls, for whoever shows it (the CLI's status line on stderr).

The engine calls :func:`step` at each stage (fitting a form, bootstrapping, each calibration rollout, each form of
a ranking); a face installs a hook with :func:`reporting` for the duration of a command. Without a hook a step
costs one function call.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator

_HOOK: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("progress_hook", default=None)


def step(message: str) -> None:
    """Report that the engine is now doing ``message``."""
    hook = _HOOK.get()
    if hook is not None:
        hook(message)


@contextlib.contextmanager
def reporting(hook: Callable[[str], None]) -> Iterator[None]:
    """Send the engine's steps to ``hook`` inside the block."""
    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)

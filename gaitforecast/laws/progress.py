"""Progress of long engine calls, for whoever shows it (the CLI's status line on stderr, the dashboard's bar).

The engine says what it is doing and how far it got::

    progress.step("bootstrapping chinchilla on 240 runs", total=1000, unit="resamples")
    progress.advance(400)                                   # 400 of the 1,000 refits are done
    for k in progress.over(range(6), "calibrating chinchilla for extrapolation", unit="rollouts"):
        ...                                                 # steps inside report beneath the rollout

A face installs a hook with :func:`reporting` for the duration of a command; the hook gets a :class:`Progress`
(the stages open now, outermost first, with their counts, the overall fraction done and an ETA at the pace so
far) in the engine's own thread, so it must be cheap. A new stage always reaches the hook; a count at most every
``every`` seconds (and always when it reaches its total), so a bootstrap that reports each Gauss-Newton sweep is
not slowed by whoever listens. Without a hook each call costs one context-variable lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Stage:
    """One stage of the work: what it is, and for a counted stage how many of ``total`` ``unit`` are done."""

    message: str
    done: int = 0
    total: int | None = None
    unit: str = ""
    elapsed_s: float = 0.0  # since the stage began

    def describe(self) -> str:
        return f"{self.message}: {self.done:,} of {self.total:,} {self.unit}" if self.total else self.message


@dataclass(frozen=True)
class Progress:
    """What the engine is doing now: the open stages, outermost first (the last is the current step)."""

    stages: tuple[Stage, ...]

    @property
    def current(self) -> Stage:
        return self.stages[-1]

    @property
    def fraction(self) -> float | None:
        """How far the outermost counted stage is, the current item's own progress included (None: uncounted)."""
        frac = None
        for stage in reversed(self.stages):
            if stage.total:
                frac = min(1.0, (stage.done + (frac or 0.0)) / stage.total)
        return frac

    @property
    def eta_s(self) -> float | None:
        """Seconds left in the outermost counted stage at its pace so far (None until something is done)."""
        frac = self.fraction
        counted = [s for s in self.stages if s.total]
        if not frac or not counted:
            return None
        return counted[0].elapsed_s * (1.0 - frac) / frac

    def describe(self) -> str:
        """One line: 'calibrating ...: 2 of 6 rollouts > bootstrapping ...: 40 of 100 resamples, about 3 s left'."""
        text = " > ".join(s.describe() for s in self.stages)
        eta = self.eta_s
        if eta is not None and self.fraction < 1.0:
            text += f", about {_duration(eta)} left"
        return text


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class _Open:
    """A stage while it runs (mutable; the hook sees frozen copies)."""

    def __init__(self, message: str, total: int | None, unit: str):
        self.message, self.total, self.unit = message, total, unit
        self.done, self.start = 0, time.monotonic()

    def frozen(self, now: float) -> Stage:
        return Stage(self.message, self.done, self.total, self.unit, now - self.start)


class _Reporter:
    def __init__(self, hook: Callable[[Progress], None], every: float):
        self.hook, self.every = hook, every
        self.stages: list[_Open] = []  # open by over(), outermost first
        self.leaf: _Open | None = None  # the current step inside them
        self.sent = -float("inf")

    def send(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.sent < self.every:
            return
        self.sent = now
        open_now = self.stages + ([self.leaf] if self.leaf is not None else [])
        if open_now:
            self.hook(Progress(tuple(s.frozen(now) for s in open_now)))


_REPORTER: contextvars.ContextVar[_Reporter | None] = contextvars.ContextVar("progress_reporter", default=None)


def step(message: str, total: int | None = None, unit: str = "") -> None:
    """Report that the engine now does ``message`` (counted in ``total`` ``unit`` when given)."""
    rep = _REPORTER.get()
    if rep is not None:
        rep.leaf = _Open(message, total, unit)
        rep.send(force=True)


def advance(done: int) -> None:
    """Report that ``done`` of the current step's total are finished."""
    rep = _REPORTER.get()
    if rep is not None and rep.leaf is not None and rep.leaf.total and int(done) != rep.leaf.done:
        rep.leaf.done = int(done)
        rep.send(force=rep.leaf.done >= rep.leaf.total)


def over(items: Iterable[T], message: str, unit: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` as one counted stage (``total``: their number, by default ``len(items)``); the steps
    reported while an item runs show beneath it."""
    rep = _REPORTER.get()
    if rep is None:
        yield from items
        return
    stage = _Open(message, len(items) if total is None else total, unit)  # type: ignore[arg-type]
    rep.stages.append(stage)
    rep.leaf = None
    try:
        for k, item in enumerate(items):
            stage.done, rep.leaf = k, None
            rep.send(force=k == 0)
            yield item
        stage.done, rep.leaf = stage.total, None
        rep.send(force=True)
    finally:
        if stage in rep.stages:
            rep.stages.remove(stage)
        rep.leaf = None


@contextlib.contextmanager
def reporting(hook: Callable[[Progress], None], every: float = 0.1) -> Iterator[None]:
    """Send the engine's progress to ``hook`` inside the block (counts at most every ``every`` seconds)."""
    token = _REPORTER.set(_Reporter(hook, every))
    try:
        yield
    finally:
        _REPORTER.reset(token)

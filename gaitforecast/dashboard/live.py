"""Live progress on the page while the engine computes: a bar with the stages, the count (resamples refitted of
the total) and an ETA, cleared when the page is done.

The fits run inside ``st.cache_data`` functions, whose ``st.*`` calls Streamlit records and replays on every cache
hit (and a call on an element made outside the function breaks the replay). So the engine's hook
(:mod:`gaitforecast.laws.progress`, called in the script thread, inside those functions) only keeps the latest
report, and a display thread that carries the script's run context draws it into a placeholder made outside any
cached function, at most ten times a second; Streamlit's own spinner is drawn the same way. A cache hit runs no
engine code, so it draws nothing.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from gaitforecast.laws import progress

EVERY_S = 0.1  # the engine reports counts at most this often; the page redraws at most this often


def draw(slot, now: progress.Progress) -> None:  # noqa: ANN001  (a Streamlit placeholder)
    """One report on the page: the bar at the overall fraction, the stages with their counts and the ETA."""
    slot.progress(now.fraction or 0.0, text=now.describe())


class LiveProgress:
    """The latest engine report and the thread that draws it into ``slot``."""

    def __init__(self, slot, every: float):  # noqa: ANN001
        self.slot, self.every = slot, every
        self.latest: progress.Progress | None = None
        self._drawn: progress.Progress | None = None
        self._news, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="gaitforecast-live-progress", daemon=True)

    def receive(self, now: progress.Progress) -> None:
        """The engine's hook: keep the report (no Streamlit call here: this runs inside cached functions)."""
        self.latest = now
        self._news.set()

    def _draw_latest(self) -> None:
        now = self.latest
        if now is not None and now is not self._drawn:
            draw(self.slot, now)
            self._drawn = now

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._news.wait(timeout=0.5):
                self._news.clear()
                self._draw_latest()
                self._stop.wait(self.every)

    def start(self) -> None:
        add_script_run_ctx(self._thread, get_script_run_ctx())
        self._thread.start()

    def stop(self) -> None:
        """Stop drawing (the last report is drawn first, so what was reported was shown) and clear the slot."""
        self._stop.set()
        self._news.set()
        self._thread.join()
        self._draw_latest()
        self.slot.empty()


@contextlib.contextmanager
def shown(every: float | None = None) -> Iterator[LiveProgress | None]:
    """Show the engine's progress at this place on the page inside the block (redrawn at most every ``every``
    seconds, default :data:`EVERY_S`); outside a Streamlit script run (no run context) the block runs as it is."""
    if get_script_run_ctx(suppress_warning=True) is None:
        yield None
        return
    every = EVERY_S if every is None else every
    live = LiveProgress(st.empty(), every)
    live.start()
    try:
        with progress.reporting(live.receive, every=every):
            yield live
    finally:
        live.stop()

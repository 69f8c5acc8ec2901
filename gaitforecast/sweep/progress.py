"""Rich progress for sweeps on stderr: one sweep bar (runs done / total) and one transient bar per run in flight
(steps, sequences/s, current loss, ETA), plus a one-line summary per finished run that stays in logs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

from gaitforecast.metrics import MAIN_METRIC  # re-exported for the CLI
from gaitforecast.sweep.planner import PlannedRun


def _fmt_flops(x: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


class RichReporter:
    """Implements executors.Reporter with a Rich live display (plain lines when stderr is not a terminal)."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False, disable=quiet,
        )
        self._sweep: TaskID | None = None
        self._runs: dict[str, TaskID] = {}
        self._labels: dict[str, str] = {}

    def __enter__(self) -> "RichReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def start(self, total: int, skipped: int) -> None:
        self._sweep = self.progress.add_task("sweep", total=total, completed=skipped, info="")
        if skipped:
            self.note(f"{skipped} of {total} runs already done in this store: skipped")

    def run_started(self, run: PlannedRun) -> None:
        self._labels[run.id] = run.label()
        self._runs[run.id] = self.progress.add_task(f"  {run.label()}", total=run.steps, info="starting")

    def event(self, event: dict[str, Any]) -> None:
        task = self._runs.get(event.get("run_id", ""))
        if task is None:
            return
        if event.get("phase") == "eval":
            self.progress.update(task, completed=event["step"], info="evaluating")
        else:
            info = f"{event['seq_per_s']:.0f} seq/s  loss {event['loss']:.3f}"
            self.progress.update(task, completed=event["step"], info=info)

    def run_finished(self, run: PlannedRun, status: str, metrics: dict[str, float], wall_s: float) -> None:
        task = self._runs.pop(run.id, None)
        if task is not None:
            self.progress.remove_task(task)
        if self._sweep is not None:
            self.progress.advance(self._sweep)
        if status == "done":
            main = metrics.get(MAIN_METRIC)
            main_txt = f"{MAIN_METRIC} {main:.3f}" if main is not None else ""
            self.progress.console.print(
                f"done  {run.label():28s} N={run.params:,} D={run.samples:,} C={_fmt_flops(run.flops)}FLOP "
                f"{main_txt} heldout loss {metrics.get('ssl_loss_heldout', float('nan')):.3f} {wall_s:.0f}s",
                highlight=False, soft_wrap=True,
            )

    def note(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, soft_wrap=True)

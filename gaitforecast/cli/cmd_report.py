"""`gaitforecast plot | report`: the dashboard's figures as files for papers, and a self-contained HTML report.

Thin: check the options and the output path, call gaitforecast.reporting (imported here, inside the commands, so
Altair and vl-convert never load at the CLI's start), write, print. The options are the law commands' own.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from gaitforecast import forecast
from gaitforecast.cli._common import JsonOption, StoreOption, app, console, emit_json, parse_amount
from gaitforecast.cli.cmd_laws import (
    ArchOption, DeltaOption, DropOption, KindOption, LawOption, MetricOption, SeedOption, _progress, _warn,
)
from gaitforecast.errors import GaitforecastError
from gaitforecast.forecast import Request
from gaitforecast.outfile import output_path, write_file

ResamplesOption = typer.Option(
    None, "--resamples", min=10, help="Bootstrap resamples (default: as `fit`/`predict` 1,000, as `backtest` and "
                                       "`compare` 500).")
BudgetOption = typer.Option(None, "--budget", help="Compute budget in FLOPs to forecast at: 3e17, 2.5e18, 300P.")
FitBelowOption = typer.Option(None, "--fit-below", help="Backtest: fit on runs with at most this many FLOPs "
                                                        "(default: 65 % up the log-compute range).")


def _amount(text: str | None, flag: str) -> float | None:
    return parse_amount(text, flag) if text is not None else None


@app.command("plot")
def plot_cmd(
    figure: str = typer.Argument(..., metavar="FIGURE",
                                 help="scaling, frontier, optimal, backtest, compare or forecast (needs --budget)."),
    out: Path = typer.Option(..., "--out", help="File to write: .png, .svg or .pdf (.json: the Vega-Lite spec)."),
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    arch: Optional[str] = ArchOption, kind: Optional[str] = KindOption, resamples: Optional[int] = ResamplesOption,
    seed: int = SeedOption, huber_delta: float = DeltaOption, drop_worst: int = DropOption,
    budget: Optional[str] = BudgetOption, fit_below: Optional[str] = FitBelowOption,
    axis: Optional[str] = typer.Option(None, "--axis", help="scaling: the x axis, flops, params or samples "
                                                            "(default: compute where the law is drawn against it)."),
    width: int = typer.Option(520, "--width", min=100, max=4000, help="Width of the plot area in pixels."),
    height: Optional[int] = typer.Option(None, "--height", min=80, max=4000,
                                         help="Height of the plot area (each panel) in pixels (default: 320)."),
    scale: float = typer.Option(2.0, "--scale", min=0.1, max=20.0, help="PNG: pixels per chart pixel."),
    ppi: Optional[float] = typer.Option(None, "--ppi", min=10, max=2400,
                                        help="PNG: pixels per inch, e.g. 300 for print (replaces --scale)."),
    caption: bool = typer.Option(True, "--caption/--no-caption", help="Write the caption line under the chart."),
    json_out: bool = JsonOption,
) -> None:
    """A figure for a paper: the dashboard's chart, with the fitted law, its bootstrap band and a caption."""
    from gaitforecast.reporting import figures, render

    if figure not in figures.KINDS:
        raise GaitforecastError(f"unknown figure {figure!r}; one of {', '.join(figures.KINDS)}")
    fmt = render.figure_format(out)
    output_path(out)  # refuse a directory, FIFO or device before the work, not after
    if axis is not None and figure != "scaling":
        raise GaitforecastError("--axis is for the scaling figure")
    if axis is not None and axis not in figures.AXES:
        raise GaitforecastError(f"unknown axis {axis!r}; one of {', '.join(figures.AXES)}")
    c = _amount(budget, "--budget")
    cutoff = _amount(fit_below, "--fit-below")
    request = Request(metric, arch, law, kind, resamples or figures.default_resamples(figure), seed, huber_delta,
                      drop_worst)
    runs = forecast.read_runs(store)
    with _progress(f"fitting for the {figure} figure"):
        fig = figures.build(figure, runs, request, budget=c, axis=axis, fit_below=cutoff)
    chart = fig.chart(width=width, height=height, caption=caption)
    with _progress(f"rendering {fmt.upper()}"):
        written = write_file(out, render.render(chart, fmt, scale=None if ppi else scale, ppi=ppi))
    if json_out:
        emit_json({"out": str(out), "bytes": written, "format": fmt, "figure": figure, "caption": fig.caption,
                   **fig.meta, "warnings": fig.warnings})
        return
    console.print(f"wrote {out} ({written:,} bytes, {figure} figure)", highlight=False)
    console.print(f"caption: {fig.caption}", highlight=False, soft_wrap=True)
    _warn(fig.warnings)


@app.command("report")
def report_cmd(
    out: Path = typer.Option(..., "--out", help="HTML file to write (one self-contained file: figures inline)."),
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    arch: Optional[str] = ArchOption, kind: Optional[str] = KindOption, resamples: Optional[int] = ResamplesOption,
    seed: int = SeedOption, huber_delta: float = DeltaOption, drop_worst: int = DropOption,
    budget: Optional[str] = typer.Option(None, "--budget", help="Compute budget in FLOPs to forecast at (default: the "
                                                                "power of ten at or above 10x the largest run)."),
    fit_below: Optional[str] = FitBelowOption, json_out: bool = JsonOption,
) -> None:
    """A shareable report: runs, fitted law with intervals, backtest, forecast, comparison, figures, provenance."""
    from gaitforecast.reporting.report import build_report

    if out.suffix.lower() not in (".html", ".htm"):
        raise GaitforecastError(f"a report is one HTML file; name it .html (got {out.name!r})")
    output_path(out)
    c = _amount(budget, "--budget")
    cutoff = _amount(fit_below, "--fit-below")
    request = Request(metric, arch, law, kind, forecast.DEFAULT_RESAMPLES, seed, huber_delta, drop_worst)
    command = " ".join(shlex.quote(a) for a in ["gaitforecast", *sys.argv[1:]])
    with _progress("building the report"):
        report = build_report(store, request, budget=c, fit_below=cutoff, resamples=resamples, command=command)
    written = write_file(out, report.html.encode("utf-8"))
    if json_out:
        emit_json({"out": str(out), "bytes": written, **report.facts})
        return
    facts = report.facts
    console.print(f"wrote {out} ({written:,} bytes): {facts['law']} law on {facts['metric']}, {facts['n_runs']} runs, "
                  f"forecast at {facts['budget']:.3g} FLOPs", highlight=False)
    for name, why in facts["sections"].items():
        if why != "ok":
            console.print(f"left out of the report: {name} ({why})", highlight=False, soft_wrap=True)

"""Figures for papers: the dashboard's charts, built from what the forecast use case returns, with a caption.

Each builder takes the use case's result (a :class:`gaitforecast.forecast.Fitted`, a backtest report or a
comparison) and gives a :class:`Figure`: the panels the matching dashboard page draws (same chart builders, same
chart data from :mod:`gaitforecast.dashboard.chartdata`), a one-paragraph caption (law, runs, interval level)
and the same facts as values. :func:`build` runs the use case for a kind of figure::

    figure = build("scaling", forecast.read_runs(store), Request(metric="loss"))
    chart = figure.chart(width=520)          # an Altair chart; the caption under it, the values in its usermeta
    write_file(Path("fig.pdf"), render.render(chart, "pdf"))

Nothing here fits a law by its own path: fits, forecasts, backtests and comparisons all come from
:mod:`gaitforecast.forecast`, with its defaults.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from gaitforecast import forecast, laws
from gaitforecast.dashboard import charts, chartdata
from gaitforecast.errors import GaitforecastError
from gaitforecast.forecast import Fitted, Request

KINDS = ("scaling", "frontier", "optimal", "backtest", "compare", "forecast")
AXES = ("flops", "params", "samples")
AXIS_WORDS = {"flops": "training compute", "params": "parameters", "samples": "samples seen"}
DEFAULT_WIDTH = 520
BULKY = ("curve", "rows", "allocation")  # tables in Figure.meta: the chart's datasets hold them already
CAPTION_FONT = 11


@dataclass
class Figure:
    """A figure's panels (Altair charts, top to bottom), its caption and the caption's facts as JSON values."""

    kind: str
    panels: list[alt.TopLevelMixin]
    caption: str
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the use case says about the fit (as `fit` prints)

    def chart(self, width: int = DEFAULT_WIDTH, height: int | None = None, caption: bool = True
              ) -> alt.TopLevelMixin:
        """The figure as one chart: panels ``width`` wide (and ``height`` high; default: the dashboard's), the
        caption under them as a wrapped text block, the facts in the spec's ``usermeta["gaitforecast"]``."""
        sized = [p.properties(width=width, **({"height": height} if height else {})) for p in self.panels]
        out = sized[0] if len(sized) == 1 else alt.vconcat(*sized)
        facts = {k: v for k, v in self.meta.items() if k not in BULKY}
        props: dict[str, Any] = {"usermeta": {"gaitforecast": {"kind": self.kind, "caption": self.caption, **facts}}}
        if caption:
            chars = max(40, int(width / (CAPTION_FONT * 0.47)))  # about the plot's width in caption characters
            lines = textwrap.wrap(self.caption, width=chars, break_on_hyphens=False, break_long_words=False)
            props["title"] = alt.TitleParams(text=lines, orient="bottom", anchor="start", fontSize=CAPTION_FONT,
                                             fontWeight="normal", color="#333333", offset=14)
        return out.properties(**props)


# ---------------------------------------------------------------- words and values of a fitted law
def num(x: float | None, digits: int = 3) -> str:
    """A number for a caption: 3 significant digits, "-" when missing."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def interval(pair: list[float] | tuple[float, float] | None, digits: int = 3) -> str:
    """"[lo, hi]" of a pair, "" when there is none."""
    return f"[{num(pair[0], digits)}, {num(pair[1], digits)}]" if pair else ""


def level_text(level: float) -> str:
    """0.95 -> "95 %"."""
    return f"{level * 100:.0f} %"


def law_meta(fitted: Fitted) -> dict[str, Any]:
    """The fitted law as values: form, metric, runs, resamples, interval level, parameters with intervals."""
    boot, law = fitted.boot, fitted.law
    return {"law": law.law, "description": law.form.description, "metric": law.metric, "fitted_as": law.fitted_as,
            "kind": law.data.kind, "arch": fitted.arch, "n_runs": law.n_runs, "n_resamples": boot.n_resamples,
            "level": boot.level, "params": {k: float(v) for k, v in law.params.items()},
            "ci": boot.param_ci(), "fixed": dict(law.fixed)}


def law_sentence(fitted: Fitted) -> str:
    """"chinchilla law E + A/N^alpha + ... fitted to loss of 240 runs: E 1.82 [1.77, 1.87], ...; 95 % bootstrap
    intervals (1000 run-level resamples)"."""
    meta = law_meta(fitted)
    of = f"{meta['n_runs']} {meta['arch']} runs" if meta["arch"] else f"{meta['n_runs']} runs"
    params = ", ".join(f"{k} {num(v)} (held)" if k in meta["fixed"] else f"{k} {num(v)} {interval(meta['ci'][k])}"
                       for k, v in meta["params"].items())
    return (f"{meta['law']} law {meta['description']}, fitted to {meta['fitted_as']} of {of}: {params}; "
            f"{level_text(meta['level'])} bootstrap intervals ({meta['n_resamples']} run-level resamples)")


def _y_title(fitted: Fitted) -> str:
    return chartdata.target_title(fitted.law.metric, fitted.law.data.target)


def compute_curve(fitted: Fitted, reach: float | None = None) -> pd.DataFrame | None:
    """The law against compute (flops, pred, lo, hi in target units): at the compute-optimal split of each budget
    for a law in params and samples, along its compute axis for a law in compute; None for a law in one of
    params or samples alone. Drawn as the dashboard draws it, and on to ``reach`` FLOPs where that is further."""
    boot, target = fitted.boot, fitted.law.data.target
    flops = pd.to_numeric(fitted.runs.get("flops"), errors="coerce") if "flops" in fitted.runs else None
    far = reach is not None and flops is not None and reach > 2 * flops.max()
    if set(fitted.law.form.inputs) == {"params", "samples"}:
        budgets = (np.geomspace(flops.min(), 2 * reach, chartdata.FRONTIER_POINTS)
                   if far and reach > 100 * flops.max() else None)  # the page's range ends at 100x the runs
        table = laws.frontier(boot, fitted.cost_model(), budgets=budgets, n_points=chartdata.FRONTIER_POINTS)
        return chartdata.frontier_curve(table, target)
    if "flops" in fitted.law.form.inputs:
        extend = max(10.0, 2 * reach / flops.max()) if far else 10.0  # the page's curve ends at 10x the runs
        return chartdata.band_frame(laws.curve(boot, "flops", extend=extend), "flops", "flops", target)
    return None


def default_axis(fitted: Fitted) -> str:
    """Compute where the law can be drawn against it, else the law's own axis."""
    inputs = fitted.law.form.inputs
    return "flops" if set(inputs) == {"params", "samples"} or "flops" in inputs else inputs[0]


# ---------------------------------------------------------------- the figures
def scaling(fitted: Fitted, axis: str | None = None) -> Figure:
    """The Scaling laws page's chart: runs and the fitted law with its band against one axis (default compute)."""
    boot, law = fitted.boot, fitted.law
    axis = axis or default_axis(fitted)
    if axis not in AXES:
        raise GaitforecastError(f"unknown axis {axis!r}; one of {', '.join(AXES)}")
    points = chartdata.fit_points(boot, fitted.runs)
    if axis not in points.columns or not (points[axis] > 0).any():
        raise GaitforecastError(f"the runs have no {axis}; pick --axis {' or '.join(law.form.inputs)}")
    inputs, held = law.form.inputs, ""
    if axis == "flops" and set(inputs) == {"params", "samples"}:
        curve = compute_curve(fitted)
        how = "the law at the compute-optimal split of each budget"
    elif axis in inputs:
        fixed = None
        if len(inputs) == 2:
            other = next(a for a in inputs if a != axis)
            options = chartdata.held_options(points[other])
            fixed = {other: options[len(options) // 2]}  # the page's default
            held = f" with {other} held at {num(fixed[other])}"
        curve = chartdata.band_frame(laws.curve(boot, axis, fixed=fixed), axis, axis, law.data.target)
        how = f"the law{held}"
    else:
        raise GaitforecastError(f"the {law.law} law is not a function of {axis}; draw it against "
                                f"{' or '.join(inputs)} (--axis), or fit a law in {axis} (--law)")
    chart = charts.law_fit(points, curve, axis, _y_title(fitted), color="arch")
    caption = (f"{law.fitted_as} against {AXIS_WORDS[axis]}; dots: runs, line: {how}, band: its "
               f"{level_text(boot.level)} interval. {law_sentence(fitted)}.")
    return Figure("scaling", [chart], caption, {**law_meta(fitted), "axis": axis, "held": held.strip() or None,
                                                "curve": _records(curve)}, fitted.warnings())


def frontier(fitted: Fitted) -> Figure:
    """The Compute-optimal page's frontier: runs against compute, the empirical frontier, the law with its band."""
    boot, law = fitted.boot, fitted.law
    points = chartdata.fit_points(boot, fitted.runs)
    if "flops" not in points.columns:
        raise GaitforecastError("the runs have no training FLOPs; a frontier orders runs by compute")
    points["on_frontier"] = chartdata.empirical_frontier(points)
    curve = compute_curve(fitted)
    chart = charts.frontier(points, _y_title(fitted), color="arch", curve=curve)
    line = ("dashed line and band: the law at the compute-optimal split, with its "
            f"{level_text(boot.level)} interval" if curve is not None
            else f"no law line: the {law.law} law is not a function of compute")
    caption = (f"{law.fitted_as} against training compute; black steps: the empirical frontier "
               f"({int(points['on_frontier'].sum())} runs no cheaper run beats); {line}. {law_sentence(fitted)}.")
    return Figure("frontier", [chart], caption, {**law_meta(fitted), "on_frontier": int(points["on_frontier"].sum()),
                                                 "curve": _records(curve)}, fitted.warnings())


def optimal(fitted: Fitted) -> Figure:
    """The Compute-optimal page's N_opt and D_opt against compute with bands (and IsoFLOP minima as dots)."""
    boot, law = fitted.boot, fitted.law
    if set(law.form.inputs) != {"params", "samples"}:
        raise GaitforecastError(f"the {law.law} law does not split compute into model size and data; "
                                "pass --law chinchilla (E + A/N^alpha + B/D^beta)")
    table = laws.frontier(boot, fitted.cost_model(), n_points=chartdata.FRONTIER_POINTS)
    iso = laws.isoflop(law.data)
    observed = chartdata.observed_optima(chartdata.iso_minima(iso, law.data.target)) if iso is not None else None
    chart = charts.banded_lines(chartdata.allocation_lines(table), "budget", "Parameters / samples", y_fmt="~s",
                                points=observed)
    dots = "; dots: IsoFLOP minima of the runs" if observed is not None and len(observed) else ""
    caption = (f"Compute-optimal model size N_opt and samples D_opt against the compute budget, with "
               f"{level_text(boot.level)} bootstrap intervals (cost model {table['cost_model'].iloc[0]}){dots}. "
               f"{law_sentence(fitted)}.")
    rows = table[["budget_flops", "params_opt", "samples_opt", "predicted"]]
    return Figure("optimal", [chart], caption, {**law_meta(fitted), "allocation": _records(rows)}, fitted.warnings())


def forecast_figure(fitted: Fitted, budget: float) -> Figure:
    """The Forecast page's chart: the law against compute, the runs, and the forecast at ``budget``."""
    boot, law = fitted.boot, fitted.law
    answer = forecast.forecast_budget(fitted, budget)
    curve = compute_curve(fitted, reach=budget)
    if curve is None:
        raise GaitforecastError(f"the {law.law} law is not a function of compute; fit a law in compute or in params "
                                "and samples (--law chinchilla or power-compute)")
    points = chartdata.fit_points(boot, fitted.runs)
    predicted = float(chartdata.band_frame(pd.DataFrame({"x": [budget], "p": [answer["predicted"]]}), "x", "x",
                                           law.data.target, "p", "p", "p")["pred"].iloc[0])
    chart = charts.forecast(curve, budget, predicted, _y_title(fitted), points if "flops" in points else None)
    split = (f"N_opt {num(answer['params_opt'])} {interval(answer['params_opt_ci'])}, D_opt "
             f"{num(answer['samples_opt'])} {interval(answer['samples_opt_ci'])}, "
             if answer.get("params_opt") is not None else "")
    caption = (f"Forecast at {num(budget)} FLOPs (diamond): {split}{law.metric} {num(answer['predicted'])} "
               f"{interval(answer['predicted_ci'])}, one run {interval(answer['predicted_pi'])}"
               + ("" if answer.get("recommended", True) else " (not a recommendation)")
               + f". {law_sentence(fitted)}.")
    return Figure("forecast", [chart], caption, {**law_meta(fitted), "forecast": answer}, answer["warnings"])


def backtest_figure(report: forecast.BacktestReport) -> Figure:
    """The Backtest page's chart: predicted against actual for the held-out larger runs, with intervals."""
    bt = report.result
    chart = charts.predicted_vs_actual(chartdata.backtest_rows(bt.rows), bt.metric)
    caption = (f"Rollout backtest of the {report.selected} law on {bt.metric}: fitted on the {bt.n_fit} runs with "
               f"at most {num(bt.fit_below)} FLOPs, predicting the {bt.n_test} larger ones; median |error| "
               f"{num(bt.median_abs_error)} ({bt.median_rel_error:.1%} relative), {bt.coverage:.0%} inside their "
               f"95 % prediction intervals (bars; median width {num(bt.median_interval_width)}); dashed: perfect "
               "prediction.")
    meta = {k: v for k, v in report.to_dict().items() if k not in ("rows", "ranking", "errors_in")}
    meta.update({"level": 0.95, "n_runs": bt.n_fit + bt.n_test, "rows": _records(bt.rows)})
    return Figure("backtest", [chart], caption, meta, list(report.notes))


def compare_figure(cmp: laws.Comparison, fits: dict[str, Fitted]) -> Figure:
    """The Architectures page's charts: each architecture's law against compute with its runs, and below, the
    metric difference at matched compute with its interval."""
    a, b = cmp.arch_a, cmp.arch_b
    curves, dots = [], []
    for arch in (a, b):
        fitted = fits[arch]
        curve = compute_curve(fitted)
        if curve is not None:
            curves.append(chartdata.series(curve, arch))
        points = chartdata.fit_points(fitted.boot, fitted.runs)
        if "flops" in points:
            dots.append(chartdata.series_points(points, arch))
    panels = []
    if curves:
        panels.append(charts.banded_lines(pd.concat(curves, ignore_index=True), "flops", _y_title(fits[a]),
                                          series="arch", points=pd.concat(dots, ignore_index=True) if dots else None))
    rows = cmp.rows.rename(columns={"budget_flops": "budget"})
    panels.append(charts.difference(rows, f"{b} − {a}"))
    level = fits[a].boot.level
    verdict = (f"{cmp.dominates} is better at every budget" if cmp.dominates
               else f"neither is better at every budget with {level_text(level)} confidence")
    n_res = fits[a].boot.n_resamples
    caption = (f"{a} ({fits[a].law.n_runs} runs) and {b} ({fits[b].law.n_runs} runs), each fitted with the "
               f"{cmp.law} law ({n_res} run-level resamples each). Top: each law at its compute-optimal split with its "
               f"{level_text(level)} band, dots its runs. Bottom: {b} − {a} in {cmp.metric} at matched compute with "
               f"its {level_text(level)} interval; {verdict}.")
    meta = {"law": cmp.law, "metric": cmp.metric, "archs": [a, b], "level": level, "n_resamples": n_res,
            "n_runs": {arch: fits[arch].law.n_runs for arch in (a, b)},
            "params": {arch: law_meta(fits[arch])["params"] for arch in (a, b)},
            "ci": {arch: law_meta(fits[arch])["ci"] for arch in (a, b)},
            "dominates": cmp.dominates, "rows": _records(cmp.rows)}
    return Figure("compare", panels, caption, meta)


def _records(frame: pd.DataFrame | None) -> list[dict] | None:
    return None if frame is None else frame.replace({np.nan: None}).to_dict(orient="records")


# ---------------------------------------------------------------- one call per kind
def default_resamples(kind: str) -> int:
    """The use case's bootstrap size for a kind of figure (backtests and comparisons fit many times)."""
    return {"backtest": forecast.BACKTEST_RESAMPLES, "compare": forecast.COMPARE_RESAMPLES}.get(
        kind, forecast.DEFAULT_RESAMPLES)


def compare_fits(runs: pd.DataFrame, cmp: laws.Comparison, request: Request) -> dict[str, Fitted]:
    """Each compared architecture fitted with the comparison's law, as the Architectures page draws them."""
    return {arch: forecast.fit(runs, Request(metric=cmp.metric, arch=arch, law=cmp.law, kind=request.kind,
                                             resamples=request.resamples, seed=request.seed))
            for arch in (cmp.arch_a, cmp.arch_b)}


def build(kind: str, runs: pd.DataFrame, request: Request, budget: float | None = None, axis: str | None = None,
          fit_below: float | None = None) -> Figure:
    """Run the forecast use case for a ``kind`` of figure (one of :data:`KINDS`) and build it."""
    if kind not in KINDS:
        raise GaitforecastError(f"unknown figure {kind!r}; one of {', '.join(KINDS)}")
    if kind == "backtest":
        return backtest_figure(forecast.backtest(runs, request, fit_below=fit_below, rank=False))
    if kind == "compare":
        cmp = forecast.compare(runs, request)
        return compare_figure(cmp, compare_fits(runs, cmp, request))
    if kind == "forecast":
        if budget is None:
            raise GaitforecastError("a forecast figure needs --budget FLOPS (e.g. 1e18)")
        return forecast_figure(forecast.fit(runs, request, budget=True), budget)
    fitted = forecast.fit(runs, request)
    return {"scaling": lambda: scaling(fitted, axis), "frontier": lambda: frontier(fitted),
            "optimal": lambda: optimal(fitted)}[kind]()

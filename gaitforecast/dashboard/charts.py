"""Altair chart builders for the dashboard. Each returns a chart; pages only pass DataFrames in.

Conventions: quantities that span decades (params, samples, FLOPs, losses, errors) go on log scales with short
tick labels ("~s" for counts, ".0e" for FLOPs); values that are not positive are dropped before a log axis sees
them; bands are precomputed bootstrap quantiles drawn as ``mark_area`` under the median line; every mark has a
tooltip.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

AXIS_LABELS = {
    "params": "Parameters",
    "samples": "Sequences seen (samples)",
    "flops": "Training compute (FLOPs)",
    "samples_seen": "Sequences seen",
    "step": "Step",
    "budget": "Compute budget (FLOPs)",
}
FORMATS = {"flops": ".0e", "budget": ".0e", "compute": ".0e", "budget_flops": ".0e"}
# SI prefixes ("~s": 10k, 2M) only for counts; a metric on an axis keeps plain digits (0.07, not "70m")
COUNT_FIELDS = frozenset({"params", "samples", "params_opt", "samples_opt", "width", "unique_sequences",
                          "samples_seen", "step", "n_runs"})
SERIES_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]  # distinct, not shades
HEIGHT = 320


def _fmt(field: str) -> str:
    return FORMATS.get(field, "~s" if field in COUNT_FIELDS else "~g")


def decade_ticks(*columns: pd.Series) -> list[float] | None:
    """Tick values for a log axis over the given data: powers of ten, plus 2x and 5x when the data span under
    two decades (Vega's default log ticks label every integer multiple, which crowds the axis)."""
    values = pd.concat([pd.to_numeric(c, errors="coerce") for c in columns if c is not None], ignore_index=True)
    values = values[np.isfinite(values) & (values > 0)]
    if values.empty:
        return None
    lo, hi = np.log10(values.min()), np.log10(values.max())
    exps = range(int(np.floor(lo)), int(np.ceil(hi)) + 1)
    mults = (1, 2, 5) if hi - lo < 2 else (1,)
    ticks = [m * 10.0 ** e for e in exps for m in mults if lo - 1e-9 <= np.log10(m * 10.0 ** e) <= hi + 1e-9]
    if len(ticks) < 2:  # less than a decade: let Vega choose
        return None
    step = max(1, len(ticks) // 8)  # at most ~8 labels
    return ticks[::step]


def log_x(field: str, title: str | None = None, ticks: list[float] | None = None) -> alt.X:
    """Log-scaled quantitative x encoding with readable ticks."""
    axis = alt.Axis(format=_fmt(field), values=ticks) if ticks else alt.Axis(format=_fmt(field), tickCount=6)
    return alt.X(f"{field}:Q").scale(type="log", nice=False).axis(axis).title(title or AXIS_LABELS.get(field, field))


def log_y(field: str, title: str | None = None, fmt: str = "~g", ticks: list[float] | None = None) -> alt.Y:
    """Log-scaled quantitative y encoding with readable ticks."""
    axis = alt.Axis(format=fmt, values=ticks) if ticks else alt.Axis(format=fmt, tickCount=6)
    return alt.Y(f"{field}:Q").scale(type="log", nice=False, zero=False).axis(axis).title(title or field)


def _positive(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    keep = pd.Series(True, index=df.index)
    for c in cols:
        keep &= pd.to_numeric(df[c], errors="coerce") > 0
    return df[keep]


def _tooltip(df: pd.DataFrame, cols: list[str]) -> list[alt.Tooltip]:
    out = []
    for c in cols:
        if c not in df.columns:
            continue
        if pd.api.types.is_numeric_dtype(df[c]):
            out.append(alt.Tooltip(f"{c}:Q", format=".4~g"))
        else:
            out.append(alt.Tooltip(f"{c}:N"))
    return out


def run_label(run_id: str, arch, width) -> str:
    """A legend entry a person can read: "gaitformer w64 · 59bd52" (arch, width, the id's first 6 characters)."""
    parts = [str(arch) if isinstance(arch, str) and arch else None,
             f"w{int(width)}" if isinstance(width, (int, float)) and width == width else None]
    head = " ".join(p for p in parts if p)
    return f"{head} · {str(run_id)[:6]}" if head else str(run_id)[:6]


def learning_curves(curves: pd.DataFrame, x: str, value_title: str, log_value: bool) -> alt.Chart:
    """One line per run of a learning curve (``run_id``, ``x``, ``value``), x on a log scale; the legend names a
    run by ``label`` (arch, width, seed and a short id) where the frame has one."""
    xt, yt = decade_ticks(curves.get(x)), decade_ticks(curves.get("value"))
    df = _positive(curves, x, "value") if log_value else _positive(curves, x)
    y = log_y("value", value_title, ticks=yt) if log_value else alt.Y("value:Q").title(value_title).scale(zero=False)
    return alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=log_x(x, ticks=xt), y=y, color=alt.Color(f"{'label' if 'label' in df else 'run_id'}:N").title("run"),
        tooltip=_tooltip(df, ["run_id", "arch", "width", x, "value"]),
    ).properties(height=HEIGHT)


def law_fit(points: pd.DataFrame, curve: pd.DataFrame, x: str, y_title: str,
            color: str | None = None) -> alt.LayerChart:
    """Observed runs (``points``: x, ``y``) over the fitted law (``curve``: x, ``pred``, ``lo``, ``hi``) on
    log-log axes; the band is the bootstrap interval. Three layers: band, line, points."""
    xt = decade_ticks(points.get(x), curve.get(x))
    yt = decade_ticks(points.get("y"), curve.get("lo"), curve.get("hi"))
    pts = _positive(points, x, "y")
    cur = _positive(curve, x, "pred", "lo", "hi")
    band = alt.Chart(cur).mark_area(opacity=0.25, color="#4c78a8").encode(
        x=log_x(x, ticks=xt), y=log_y("lo", y_title, ticks=yt), y2="hi",
        tooltip=_tooltip(cur, [x, "pred", "lo", "hi"]))
    line = alt.Chart(cur).mark_line(color="#1f4e79").encode(
        x=log_x(x, ticks=xt), y=log_y("pred", y_title, ticks=yt), tooltip=_tooltip(cur, [x, "pred", "lo", "hi"]))
    enc = {"x": log_x(x, ticks=xt), "y": log_y("y", y_title, ticks=yt),
           "tooltip": _tooltip(pts, ["id", "arch", "width", "params", "samples", "flops", "y", "metric"])}
    if color and color in pts.columns:
        enc["color"] = alt.Color(f"{color}:N").title(color)
    dots = alt.Chart(pts).mark_circle(size=55, opacity=0.85).encode(**enc)
    return alt.layer(band, line, dots).properties(height=HEIGHT)


def residuals(points: pd.DataFrame, x: str, color: str | None = None) -> alt.LayerChart:
    """Log residuals (``resid`` = log observed - log predicted) against ``x`` (log), with a zero rule."""
    xt = decade_ticks(points.get(x))
    pts = _positive(points, x)
    enc = {"x": log_x(x, ticks=xt), "y": alt.Y("resid:Q").title("log(observed / predicted)"),
           "tooltip": _tooltip(pts, ["id", "arch", x, "y", "pred", "resid"])}
    if color and color in pts.columns:
        enc["color"] = alt.Color(f"{color}:N").title(color)
    dots = alt.Chart(pts).mark_circle(size=45).encode(**enc)
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="zero:Q")
    return alt.layer(zero, dots).properties(height=220)


def banded_lines(df: pd.DataFrame, x: str, y_title: str, series: str = "series", log_value: bool = True,
                 x_title: str | None = None, points: pd.DataFrame | None = None, y_fmt: str = "~g") -> alt.LayerChart:
    """Median lines with bands per ``series`` (columns x, ``value``, ``lo``, ``hi``), log x and (optionally) log y,
    plus optional observed ``points`` (x, ``value``, series). Used for N_opt/D_opt vs compute and for
    architectures vs compute. Layers: band, line[, points]."""
    xt = decade_ticks(df.get(x), None if points is None else points.get(x))
    yt = decade_ticks(df.get("lo"), df.get("hi"), None if points is None else points.get("value"))
    cols = (x, "value", "lo", "hi") if log_value else (x,)
    d = _positive(df, *cols)
    def ya(f: str) -> alt.Y:
        return log_y(f, y_title, y_fmt, ticks=yt) if log_value else alt.Y(f"{f}:Q").title(y_title).scale(zero=False)

    tips = _tooltip(d, [series, x, "value", "lo", "hi"])
    color = alt.Color(f"{series}:N").title(None).scale(range=SERIES_COLORS)
    band = alt.Chart(d).mark_area(opacity=0.2).encode(x=log_x(x, x_title, ticks=xt), y=ya("lo"), y2="hi", color=color,
                                                     tooltip=tips)
    line = alt.Chart(d).mark_line().encode(x=log_x(x, x_title, ticks=xt), y=ya("value"), color=color, tooltip=tips)
    layers = [band, line]
    if points is not None and len(points):
        p = _positive(points, x, "value") if log_value else points
        layers.append(alt.Chart(p).mark_circle(size=45, opacity=0.8).encode(
            x=log_x(x, x_title, ticks=xt), y=ya("value"), color=color,
            tooltip=_tooltip(p, ["id", series, "params", "samples", x, "value"])))
    return alt.layer(*layers).properties(height=HEIGHT)


def isoflop(points: pd.DataFrame, y_title: str, minima: pd.DataFrame | None = None) -> alt.LayerChart:
    """IsoFLOP curves: metric (``y``) against params (log) for each compute group (``budget``), with the
    minimum of each group marked when ``minima`` (params, y, budget) is given."""
    xt, yt = decade_ticks(points.get("params")), decade_ticks(points.get("y"))
    pts = _positive(points, "params", "y")
    color = alt.Color("budget:O").title("FLOPs group").legend(format=".1e").scale(scheme="viridis")
    base = alt.Chart(pts).encode(x=log_x("params", ticks=xt), y=log_y("y", y_title, ticks=yt), color=color,
                                 tooltip=_tooltip(pts, ["id", "params", "samples", "flops", "y", "budget"]))
    layers = [base.mark_line(opacity=0.6), base.mark_circle(size=50)]
    if minima is not None and len(minima):
        mins = _positive(minima, "params", "y")
        layers.append(alt.Chart(mins).mark_point(shape="diamond", size=160, filled=True, color="black").encode(
            x=log_x("params", ticks=xt), y=log_y("y", y_title, ticks=yt),
            tooltip=_tooltip(mins, ["budget", "params", "y"])))
    return alt.layer(*layers).properties(height=HEIGHT)


def frontier(points: pd.DataFrame, y_title: str, color: str | None = None,
             curve: pd.DataFrame | None = None) -> alt.LayerChart:
    """All runs as metric (``y``) vs compute, the empirical frontier (``on_frontier`` rows: no cheaper run did
    better) as a step line, and optionally the law's compute-optimal prediction (``curve``: flops, pred, lo, hi)
    with its band. Layers: [band, law line,] runs, frontier."""
    xt = decade_ticks(points.get("flops"), None if curve is None else curve.get("flops"))
    yt = decade_ticks(points.get("y"), None if curve is None else curve.get("lo"))
    pts = _positive(points, "flops", "y")
    enc = {"x": log_x("flops", ticks=xt), "y": log_y("y", y_title, ticks=yt),
           "tooltip": _tooltip(pts, ["id", "arch", "params", "samples", "flops", "y"])}
    if color and color in pts.columns:
        enc["color"] = alt.Color(f"{color}:N").title(color)
    layers = []
    if curve is not None and len(curve):
        cur = _positive(curve, "flops", "pred", "lo", "hi")
        tips = _tooltip(cur, ["flops", "pred", "lo", "hi", "params_opt", "samples_opt"])
        layers.append(alt.Chart(cur).mark_area(opacity=0.25, color="#4c78a8").encode(
            x=log_x("flops", ticks=xt), y=log_y("lo", y_title, ticks=yt), y2="hi", tooltip=tips))
        layers.append(alt.Chart(cur).mark_line(color="#1f4e79", strokeDash=[6, 3]).encode(
            x=log_x("flops", ticks=xt), y=log_y("pred", y_title, ticks=yt), tooltip=tips))
    layers.append(alt.Chart(pts).mark_circle(size=45, opacity=0.6).encode(**enc))
    front = pts[pts["on_frontier"]].sort_values("flops") if "on_frontier" in pts else pts.iloc[:0]
    layers.append(alt.Chart(front).mark_line(interpolate="step-after", color="black").encode(
        x=log_x("flops", ticks=xt), y=log_y("y", y_title, ticks=yt),
        tooltip=_tooltip(front, ["id", "params", "samples", "flops", "y"])))
    return alt.layer(*layers).properties(height=HEIGHT)


def forecast(curve: pd.DataFrame, budget: float, predicted: float, y_title: str,
             runs: pd.DataFrame | None = None) -> alt.LayerChart:
    """The law's compute-optimal prediction vs compute (``curve``: flops, pred, lo, hi) with its band, the fitted
    runs (``runs``: flops, y), a rule at the budget and the forecast point. Layers: band, line, [runs,] rule, point."""
    xt = decade_ticks(curve.get("flops"), pd.Series([budget]))
    yt = decade_ticks(curve.get("lo"), curve.get("hi"), None if runs is None else runs.get("y"))
    cur = _positive(curve, "flops", "pred", "lo", "hi")
    tips = _tooltip(cur, ["flops", "pred", "lo", "hi"])
    layers = [
        alt.Chart(cur).mark_area(opacity=0.25, color="#4c78a8").encode(
            x=log_x("flops", ticks=xt), y=log_y("lo", y_title, ticks=yt), y2="hi", tooltip=tips),
        alt.Chart(cur).mark_line(color="#1f4e79").encode(
            x=log_x("flops", ticks=xt), y=log_y("pred", y_title, ticks=yt), tooltip=tips),
    ]
    if runs is not None and len(runs):
        r = _positive(runs, "flops", "y")
        layers.append(alt.Chart(r).mark_circle(size=35, opacity=0.5, color="gray").encode(
            x=log_x("flops", ticks=xt), y=log_y("y", y_title, ticks=yt),
            tooltip=_tooltip(r, ["id", "params", "samples", "flops", "y"])))
    mark = pd.DataFrame({"flops": [budget], "pred": [predicted]})
    layers.append(alt.Chart(mark).mark_rule(color="#d62728", strokeDash=[4, 4]).encode(
        x=log_x("flops", ticks=xt), tooltip=_tooltip(mark, ["flops"])))
    layers.append(alt.Chart(mark).mark_point(shape="diamond", size=180, filled=True, color="#d62728").encode(
        x=log_x("flops", ticks=xt), y=log_y("pred", y_title, ticks=yt), tooltip=_tooltip(mark, ["flops", "pred"])))
    return alt.layer(*layers).properties(height=HEIGHT)


def difference(rows: pd.DataFrame, title: str) -> alt.LayerChart:
    """Metric difference between two architectures vs compute (``budget``, ``diff``, ``diff_lo``, ``diff_hi``)
    with its interval band and a zero rule; x on a log scale. Layers: zero rule, band, line."""
    xt = decade_ticks(rows.get("budget"))
    d = _positive(rows, "budget")
    tips = _tooltip(d, ["budget", "diff", "diff_lo", "diff_hi", "better"])
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="zero:Q")
    band = alt.Chart(d).mark_area(opacity=0.25, color="#9467bd").encode(
        x=log_x("budget", ticks=xt), y=alt.Y("diff_lo:Q").title(title), y2="diff_hi", tooltip=tips)
    line = alt.Chart(d).mark_line(point=True, color="#9467bd").encode(
        x=log_x("budget", ticks=xt), y=alt.Y("diff:Q").title(title), tooltip=tips)
    return alt.layer(zero, band, line).properties(height=260)


def exponents(rows: pd.DataFrame) -> alt.LayerChart:
    """Each architecture's exponents (``arch``, ``exponent``, ``value``, ``lo``, ``hi``) as points with their
    interval, one row per exponent, the architectures side by side in it. Layers: interval rule, point."""
    color = alt.Color("arch:N").title(None).scale(range=SERIES_COLORS)
    y = alt.Y("exponent:N").title(None)
    tips = _tooltip(rows, ["arch", "exponent", "value", "lo", "hi"])
    rule = alt.Chart(rows.dropna(subset=["lo", "hi"])).mark_rule(strokeWidth=2).encode(
        x=alt.X("lo:Q").title("exponent (95% interval)").scale(zero=False), x2="hi", y=y,
        yOffset="arch:N", color=color, tooltip=tips)
    point = alt.Chart(rows).mark_point(filled=True, size=70).encode(
        x=alt.X("value:Q").scale(zero=False), y=y, yOffset="arch:N", color=color, tooltip=tips)
    return alt.layer(rule, point).properties(height=160)


def predicted_vs_actual(rows: pd.DataFrame, title: str) -> alt.LayerChart:
    """Backtest: predicted (with its interval ``lo``..``hi``) against actual, log-log, with the y = x line.
    Three layers: identity rule, interval bars, points coloured by whether the actual is inside the interval."""
    xt = yt = decade_ticks(rows.get("actual"), rows.get("predicted"))
    d = _positive(rows, "actual", "predicted")
    lo, hi = float(min(d["actual"].min(), d["predicted"].min())), float(max(d["actual"].max(), d["predicted"].max()))
    ident = alt.Chart(pd.DataFrame({"a": [lo, hi], "b": [lo, hi]})).mark_line(color="gray", strokeDash=[4, 4]).encode(
        x=alt.X("a:Q").scale(type="log"), y=alt.Y("b:Q").scale(type="log"))
    tips = _tooltip(d, ["id", "flops", "actual", "predicted", "lo", "hi", "rel_error", "inside"])
    bars = alt.Chart(_positive(d, "lo", "hi")).mark_rule(opacity=0.6).encode(
        x=log_x("actual", f"Actual {title}", ticks=xt), y=log_y("lo", f"Predicted {title}", ticks=yt), y2="hi",
        tooltip=tips)
    dots = alt.Chart(d).mark_circle(size=60).encode(
        x=log_x("actual", f"Actual {title}", ticks=xt), y=log_y("predicted", f"Predicted {title}", ticks=yt),
        color=alt.Color("inside:N").title("inside 95% PI").scale(domain=[True, False], range=["#2ca02c", "#d62728"]),
        tooltip=tips)
    return alt.layer(ident, bars, dots).properties(height=HEIGHT)


def coord_check(df: pd.DataFrame, value: str, facet: str | None) -> alt.Chart:
    """muP coordinate check: activation size (``value``) vs width (log-log), one line per step (and layer),
    faceted by parametrisation when ``facet`` is given. Flat lines across width = a working muP."""
    xt, yt = decade_ticks(df.get("width")), decade_ticks(df.get(value))
    d = _positive(df, "width", value)
    color = "step:O" if "step" in d.columns else alt.Undefined
    enc = {"x": log_x("width", "Width", ticks=xt), "y": log_y(value, value, ticks=yt), "color": color,
           "tooltip": _tooltip(d, ["parametrization", "layer", "width", "step", value])}
    if "layer" in d.columns:
        enc["detail"] = "layer:N"
    ch = alt.Chart(d).mark_line(point=True).encode(**enc).properties(height=260, width=320)
    if facet and facet in d.columns:
        return ch.facet(column=alt.Column(f"{facet}:N").title(None))
    return ch


def design_widths(points: pd.DataFrame, y_title: str) -> alt.LayerChart:
    """An adaptive sweep's forecast interval width against compute spent (both log): the width each refit
    measured (line and points) and the width each decision expected after its runs (hollow points)."""
    xt, yt = decade_ticks(points.get("compute")), decade_ticks(points.get("width"))
    pts = _positive(points, "compute", "width")
    tips = _tooltip(pts, ["step", "series", "compute", "width"])
    x, y = log_x("compute", "Compute spent (FLOPs)", ticks=xt), log_y("width", y_title, ticks=yt)
    measured = pts[pts["series"] == "measured"]
    expected = pts[pts["series"] == "expected"]
    color = alt.Color("series:N").title(None).scale(domain=["measured", "expected"], range=SERIES_COLORS[:2])
    return alt.layer(
        alt.Chart(measured).mark_line(point=True).encode(x=x, y=y, color=color, tooltip=tips),
        alt.Chart(expected).mark_point(size=70, filled=False).encode(x=x, y=y, color=color, tooltip=tips),
    ).properties(height=HEIGHT)

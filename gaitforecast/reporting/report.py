"""A shareable report: one self-contained HTML file with a store's scaling-law study.

It holds the fitted law with its intervals and diagnostics, a forecast at a budget, the rollout backtest, the
architecture comparison (when the store has two), the figures inline (static SVG images, no script and no network
needed to read it), the runs table, and where it came from: the store, its content signature, a digest of the
runs fitted, and the package versions. Every number comes from the forecast use case, so it matches what
`gaitforecast fit / predict / backtest / compare` print for the same options::

    report = build_report(store, Request(metric="loss"), budget=1e22)
    write_file(Path("report.html"), report.html.encode())

Every piece of the user's text (store path, metric, architecture and column names) is escaped.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from gaitforecast import forecast
from gaitforecast.dashboard.chartdata import default_budget, store_signature
from gaitforecast.errors import GaitforecastError
from gaitforecast.forecast import Fitted, Request
from gaitforecast.reporting import figures
from gaitforecast.reporting.render import render

PACKAGES = ("gaitforecast", "numpy", "scipy", "pandas", "lmfit", "duckdb", "altair", "vl-convert-python")
RUN_COLUMNS = ("id", "arch", "width", "seed", "params", "samples", "flops")
FIGURE_WIDTH = 560
_TROUBLE = (GaitforecastError, ValueError, FloatingPointError, np.linalg.LinAlgError)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 980px; margin: 2em auto;
       padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f6; } td.text, th.text { text-align: left; }
.lede { color: #444; } .na { color: #8a5300; } .warn { color: #8a5300; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
.runs { max-height: 32em; overflow: auto; display: block; }
code { background: #f4f4f6; padding: 0 0.2em; }
"""


def esc(value: Any) -> str:
    """The user's text, escaped for HTML (quotes included)."""
    return html.escape(str(value), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    """A number as 4 significant digits ("-" when missing); text escaped."""
    if x is None:
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, float, np.integer, np.floating)):
        return f"{x:.{digits}g}" if np.isfinite(x) else "-"
    return esc(x)


def fmt_interval(pair: Any) -> str:
    return f"[{fmt(pair[0])}, {fmt(pair[1])}]" if pair else ""


def table(header: list[str], rows: list[list[str]], keys: list[str] | None = None, cls: str = "") -> str:
    """An HTML table of already-escaped cells; ``keys`` give each row a data-key (for readers and tests); the
    first column is text."""
    head = "".join(f'<th class="{"text" if i == 0 else ""}">{h}</th>' for i, h in enumerate(header))
    body = []
    for i, row in enumerate(rows):
        key = f' data-key="{esc(keys[i])}"' if keys else ""
        cells = "".join(f'<td class="{"text" if j == 0 else ""}">{c}</td>' for j, c in enumerate(row))
        body.append(f"<tr{key}>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def figure_html(fig: figures.Figure, alt_text: str) -> str:
    """A figure as an inline SVG image (base64 data URI: no script runs, nothing is fetched) with its caption."""
    svg = render(fig.chart(width=FIGURE_WIDTH, caption=False), "svg")
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return (f'<figure data-kind="{esc(fig.kind)}"><img alt="{esc(alt_text)}" src="{uri}">'
            f"<figcaption>{esc(fig.caption)}</figcaption></figure>")


def warnings_html(notes: list[str]) -> str:
    return "".join(f'<p class="warn">warning: {esc(n)}</p>' for n in notes)


@dataclass
class Section:
    """One part of the report: its id, heading and HTML, or the reason it is not there."""

    id: str
    title: str
    body: str = ""
    missing: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def html(self) -> str:
        inner = self.body if self.missing is None else f'<p class="na">Not available: {esc(self.missing)}</p>'
        return f'<section id="{self.id}"><h2>{esc(self.title)}</h2>{inner}</section>'


def _section(id_: str, title: str, make: Callable[[], tuple[str, dict]]) -> Section:
    """A section whose failure (too few runs, one architecture ...) is reported in it, not raised."""
    try:
        body, facts = make()
    except _TROUBLE as exc:
        return Section(id_, title, missing=str(exc) or type(exc).__name__)
    return Section(id_, title, body, facts=facts)


# ---------------------------------------------------------------- provenance
def versions() -> dict[str, str]:
    """Versions of Python and the packages the analysis and the figures depend on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def runs_digest(runs: pd.DataFrame, metric: str) -> str:
    """sha256 (first 16 hex) over the finished runs' id, size, compute and metric: the same digest means the
    same runs with the same figures, whatever the store file's timestamps."""
    cols = [c for c in ("id", "params", "samples", "flops", metric) if c in runs.columns]
    records = runs[cols].sort_values("id").replace({np.nan: None}).to_dict(orient="records")
    text = json.dumps(records, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _signature_text(signature: tuple | None) -> str:
    if signature is None:
        return "-"
    parts = []
    for name, part in zip(("database", "WAL"), signature):
        if part is None:
            parts.append(f"{name}: none")
            continue
        size, mtime_ns = part
        when = dt.datetime.fromtimestamp(mtime_ns / 1e9, tz=dt.timezone.utc).isoformat(timespec="seconds")
        parts.append(f"{name}: {size:,} bytes, modified {when}")
    return "; ".join(parts)


# ---------------------------------------------------------------- sections
def _law_section(fitted: Fitted) -> tuple[str, dict]:
    boot, law = fitted.boot, fitted.law
    summary = forecast.fit_summary(fitted)
    ci, fixed = summary["ci"], summary["fixed"] or {}
    rows = [[esc(k), fmt(v), "held fixed (not identified)" if k in fixed else fmt_interval(ci[k])]
            for k, v in law.params.items()]
    level = figures.level_text(boot.level)
    facts = [("law", esc(law.law)), ("form", esc(law.form.description)), ("fitted to", esc(law.fitted_as)),
             ("architecture", esc(fitted.arch or "-")), ("runs", fmt(law.n_runs)),
             ("bootstrap", f"{boot.n_resamples} run-level resamples (seed {boot.seed}), {level} intervals"),
             ("status", esc(law.status)), ("residual sd (log)", fmt(law.residual_sd))]
    iso = summary.get("isoflop")
    if iso and iso.get("exponent") is not None:
        facts.append(("IsoFLOP cross-check", f"N_opt ∝ C^{fmt(iso['exponent'])}"))
    body = (table(["quantity", "value"], [[a, b] for a, b in facts])
            + table(["parameter", "value", f"{level} interval"], rows, keys=[f"param-{k}" for k in law.params])
            + warnings_html(summary["warnings"]))
    for kind in ("scaling", "frontier", "optimal"):
        try:
            fig = {"scaling": lambda: figures.scaling(fitted), "frontier": lambda: figures.frontier(fitted),
                   "optimal": lambda: figures.optimal(fitted)}[kind]()
        except _TROUBLE as exc:
            body += f'<p class="na">No {kind} figure: {esc(exc)}</p>'
            continue
        body += figure_html(fig, f"{kind} figure")
    return body, {"law": law.law, "params": dict(law.params), "ci": ci, "n_runs": law.n_runs}


def _forecast_section(fitted: Fitted, budget: float) -> tuple[str, dict]:
    fig = figures.forecast_figure(fitted, budget)
    out = fig.meta["forecast"]
    rows = [["budget (FLOPs)", fmt(budget), ""]]
    if out.get("params_opt") is not None:
        rows += [["parameters N_opt", fmt(out["params_opt"]), fmt_interval(out["params_opt_ci"])],
                 ["samples D_opt", fmt(out["samples_opt"]), fmt_interval(out["samples_opt_ci"])],
                 ["samples per parameter", fmt(out["samples_per_param"]), fmt_interval(out["samples_per_param_ci"])]]
    rows += [[f"{esc(out['metric'])} (confidence interval)", fmt(out["predicted"]), fmt_interval(out["predicted_ci"])],
             [f"{esc(out['metric'])} (one run, prediction interval)", fmt(out["predicted"]),
              fmt_interval(out["predicted_pi"])]]
    keys = ["budget"] + (["params_opt", "samples_opt", "samples_per_param"] if out.get("params_opt") is not None
                         else []) + ["predicted", "predicted_one_run"]
    verdict = ("a recommendation" if out.get("recommended", True)
               else "not a recommendation (see the warning)")
    body = (f'<p>The {esc(out["law"])} law\'s compute-optimal configuration at {fmt(budget)} FLOPs '
            f"(cost model {esc(out['cost_model'])}): {verdict}.</p>"
            + table(["quantity", "value", "95 % interval"], rows, keys=keys)
            + warnings_html(out["warnings"]) + figure_html(fig, "forecast figure"))
    return body, {"budget": budget, "predicted": out["predicted"], "params_opt": out.get("params_opt"),
                  "recommended": out.get("recommended", True)}


def _backtest_section(runs: pd.DataFrame, request: Request, fit_below: float | None) -> tuple[str, dict]:
    report = forecast.backtest(runs, request, fit_below=fit_below, rank=False)
    bt = report.result
    rows = [["law", esc(report.selected)], ["fitted on", f"{bt.n_fit} runs with at most {fmt(bt.fit_below)} FLOPs"],
            ["tested on", f"{bt.n_test} larger runs"], ["median |error|", fmt(bt.median_abs_error)],
            ["median |relative error|", f"{bt.median_rel_error:.2%}"], ["bias", f"{bt.bias:+.2%}"],
            ["inside 95 % prediction interval", f"{bt.coverage:.0%}"],
            ["median interval width", fmt(bt.median_interval_width)]]
    keys = ["law", "n_fit", "n_test", "median_abs_error", "median_rel_error", "bias", "coverage", "width"]
    fig = figures.backtest_figure(report)
    body = table(["backtest", "value"], rows, keys=keys) + warnings_html(report.notes) + figure_html(
        fig, "backtest figure")
    return body, {"median_abs_error": bt.median_abs_error, "coverage": bt.coverage, "n_test": bt.n_test}


def _compare_section(runs: pd.DataFrame, request: Request) -> tuple[str, dict]:
    cmp = forecast.compare(runs, request)
    fig = figures.compare_figure(cmp, figures.compare_fits(runs, cmp, request))
    a, b = cmp.arch_a, cmp.arch_b
    rows = [[fmt(r["budget_flops"]), fmt(r[a]), fmt(r[b]), fmt(r["diff"]), fmt_interval([r["diff_lo"], r["diff_hi"]]),
             esc(r["better"] or "-")] for r in cmp.rows.to_dict(orient="records")]
    body = (f"<p>{esc(b)} minus {esc(a)} in {esc(cmp.metric)} at matched compute ({esc(cmp.law)} law); better at "
            f"every budget: {esc(cmp.dominates or 'neither')}.</p>"
            + table(["FLOPs", esc(a), esc(b), "difference", "95 % interval", "better"], rows)
            + figure_html(fig, "architecture comparison figure"))
    return body, {"dominates": cmp.dominates}


def _runs_section(runs: pd.DataFrame, fitted: Fitted) -> tuple[str, dict]:
    metric = fitted.law.metric
    fitted_ids = set(map(str, fitted.law.data.ids))
    cols = [c for c in RUN_COLUMNS if c in runs.columns]
    shown = runs.sort_values("flops") if "flops" in runs.columns else runs
    rows = []
    for rec in shown.to_dict(orient="records"):
        cells = [esc(str(rec["id"])[:12]) if c == "id" else fmt(rec.get(c)) for c in cols]
        rows.append(cells + [fmt(rec.get(metric)), "yes" if str(rec["id"]) in fitted_ids else ""])
    body = (f"<p>{len(runs)} finished runs; {len(fitted_ids)} fitted (the chosen architecture, less any left out "
            "with --drop-worst).</p>" + table([esc(c) for c in cols] + [esc(metric), "fitted"], rows, cls="runs"))
    return body, {"n_runs": len(runs)}


# ---------------------------------------------------------------- the report
@dataclass
class Report:
    """The HTML text and the facts it shows (what `report --json` prints)."""

    html: str
    facts: dict[str, Any]


def build_report(store: Path, request: Request, budget: float | None = None, fit_below: float | None = None,
                 resamples: int | None = None, command: str | None = None) -> Report:
    """The report for ``store``: the law ``request`` asks for (its defaults: the use case's), a forecast at
    ``budget`` (default: :func:`default_budget`), a backtest below ``fit_below``, the comparison. ``resamples``
    sets every bootstrap (default: the use case's per task); ``command`` is shown as how the report was made."""
    signature = store_signature(Path(store))
    runs = forecast.read_runs(store)

    def sized(default: int) -> Request:
        return Request(request.metric, request.arch, request.law, request.kind, resamples or default,
                       request.seed, request.huber_delta, request.drop_worst)

    fitted = forecast.fit(runs, sized(forecast.DEFAULT_RESAMPLES), budget=True)
    law = fitted.law
    budget = default_budget(fitted.runs) if budget is None else budget
    sections = [
        _section("law", "Fitted law", lambda: _law_section(fitted)),
        _section("forecast", f"Forecast at {fmt(budget)} FLOPs", lambda: _forecast_section(fitted, budget)),
        _section("backtest", "Rollout backtest",
                 lambda: _backtest_section(runs, sized(forecast.BACKTEST_RESAMPLES), fit_below)),
        _section("compare", "Architectures at matched compute",
                 lambda: _compare_section(runs, sized(forecast.COMPARE_RESAMPLES))),
        _section("runs", "Runs", lambda: _runs_section(runs, fitted)),
    ]
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    made = [["store", f"<code>{esc(Path(store))}</code>"], ["store signature", esc(_signature_text(signature))],
            ["runs digest (sha256)", f"<code>{runs_digest(runs, law.metric)}</code>"],
            ["generated", esc(when)]]
    if command:
        made.append(["command", f"<code>{esc(command)}</code>"])
    made += [[esc(name), esc(version)] for name, version in versions().items()]
    title = f"Scaling-law report: {law.metric}" + (f" ({fitted.arch})" if fitted.arch else "")
    text = "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1><p class=\"lede\">{esc(figures.law_sentence(fitted))}.</p>",
        '<nav>' + " · ".join(f'<a href="#{s.id}">{esc(s.title)}</a>' for s in sections)
        + ' · <a href="#provenance">Provenance</a></nav>',
        *(s.html() for s in sections),
        f'<section id="provenance"><h2>Provenance</h2>{table(["what", "value"], made)}</section>',
        "</body></html>\n",
    ])
    facts = {"law": law.law, "metric": law.metric, "arch": fitted.arch, "n_runs": law.n_runs,
             "params": dict(law.params), "ci": fitted.boot.param_ci(), "budget": budget,
             "store_signature": signature, "runs_digest": runs_digest(runs, law.metric), "versions": versions(),
             "sections": {s.id: ("ok" if s.missing is None else s.missing) for s in sections}}
    for s in sections:
        if s.id in ("forecast", "backtest", "compare"):
            facts[s.id] = s.facts or None
    return Report(text, facts)

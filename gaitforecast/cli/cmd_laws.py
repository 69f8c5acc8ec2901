"""`gaitforecast fit | predict | backtest | compare`: the analysis engine's face. Thin: parse, call gaitforecast.forecast, print."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.table import Table

from gaitforecast.cli._common import JsonOption, StoreOption, app, console, emit_json, labelled, parse_amount
from gaitforecast.errors import GaitforecastError
from gaitforecast.metrics import MAIN_METRIC
from gaitforecast import forecast, laws
from gaitforecast.forecast import Request

MetricOption = typer.Option(
    None, "--metric", help=f"Metric to fit (default: {MAIN_METRIC}, else the store's only metric)."
)
LawOption = typer.Option(
    forecast.DEFAULT_LAW, "--law",
    help="Law form: chinchilla, power-compute, power-params, power-data, sigmoid-compute; 'default' "
         "(chinchilla when runs vary in params and samples, else power-compute) or 'auto' (best backtest).",
)
ArchOption = typer.Option(None, "--arch", help="Only runs of this architecture (default: the most common one).")
ResamplesOption = typer.Option(forecast.DEFAULT_RESAMPLES, "--resamples", help="Bootstrap resamples for the intervals.")
SeedOption = typer.Option(forecast.DEFAULT_SEED, "--seed", min=0, max=2**32 - 1,
                          help="Seed of the bootstrap resampling (0 to 2^32 - 1).")
DeltaOption = typer.Option(forecast.DEFAULT_HUBER_DELTA, "--huber-delta",
                           help="Huber delta on log residuals (1e-3 as Hoffmann/Epoch).")
KindOption = typer.Option(
    None, "--kind", help="What the metric is: loss, accuracy or error (default: as stored by import-runs --kind, "
                         "else from its name; asked for when the name does not say).")
ViaOption = typer.Option(
    None, "--via", help="Two-step forecast of an accuracy: a law for this loss metric (e.g. ssl_loss_heldout), "
                        "then a fitted sigmoid link from it to the accuracy; bootstrap through both steps.")
DropOption = typer.Option(
    0, "--drop-worst", help="Leave out the K runs with the worst metric (Epoch drops 5 on the Chinchilla table).")


@contextlib.contextmanager
def _progress(what: str) -> Iterator[None]:
    """A status line on stderr (terminals only) that follows the engine: its stages, counts (resamples refitted
    of the total), an ETA, and the time so far."""
    if not console.is_terminal:
        yield
        return
    start = time.monotonic()
    with console.status(what) as status:
        def show(now: laws.progress.Progress) -> None:
            status.update(f"{now.describe()} ({time.monotonic() - start:.0f} s)")

        with laws.progress.reporting(show):
            yield


def _print_params(boot: laws.BootstrapResult) -> None:
    law = boot.law
    table = Table(title=f"{law.law} law for {law.fitted_as} ({law.n_runs} runs)")
    for col in ("parameter", "value", "95 % interval"):
        table.add_column(col)
    ci, fixed = boot.param_ci(), law.fixed
    for name, value in law.params.items():
        shown = "held fixed (not identified)" if name in fixed else f"[{ci[name][0]:.4g}, {ci[name][1]:.4g}]"
        table.add_row(name, f"{value:.4g}", shown)
    console.print(table)
    console.print(f"status: {law.status}", highlight=False)


def _warn(notes: list[str]) -> None:
    for note in notes:
        console.print(labelled("warning:", "yellow", note), highlight=False)


def _fitted(store: Path, request: Request, budget: bool = False) -> forecast.Fitted:
    with _progress("fitting"):
        return forecast.fit(forecast.read_runs(store), request, budget=budget)


@app.command("fit")
def fit_cmd(
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    arch: Optional[str] = ArchOption, resamples: int = ResamplesOption, seed: int = SeedOption,
    huber_delta: float = DeltaOption, drop_worst: int = DropOption, kind: Optional[str] = KindOption,
    json_out: bool = JsonOption,
) -> None:
    """Fit a scaling law to the finished runs, with bootstrap intervals on every parameter."""
    fitted = _fitted(store, Request(metric, arch, law, kind, resamples, seed, huber_delta, drop_worst))
    out = forecast.fit_summary(fitted)
    if json_out:
        emit_json(out)
        return
    _print_params(fitted.boot)
    iso = out["isoflop"]
    if iso:
        console.print(f"IsoFLOP cross-check: N_opt ~ C^{iso['exponent']:.3f} ({iso['note']})", highlight=False)
    _warn(out["warnings"])


def _print_forecast(title: str, out: dict[str, Any], rows: tuple[tuple[str, str | None], ...]) -> None:
    """The human forecast table: one row per (key, interval key) present in ``out``."""
    table = Table(title=title)
    for col in ("quantity", "value", "95 % interval"):
        table.add_column(col)
    for key, ci_key in rows:
        value = out.get(key.split(" ")[0])
        if value is None:
            continue
        ci = out.get(ci_key) if ci_key else None
        table.add_row(key, f"{value:.4g}", f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")
    console.print(table)


@app.command("predict")
def predict_cmd(
    budget: Optional[str] = typer.Option(None, "--budget", help="Compute budget in FLOPs: 3e17, 2.5e18, 300P."),
    params: Optional[str] = typer.Option(None, "--params", help="Model parameters N of one configuration."),
    samples: Optional[str] = typer.Option(None, "--samples", help="Training samples D of one configuration."),
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    arch: Optional[str] = ArchOption, resamples: int = ResamplesOption, seed: int = SeedOption,
    huber_delta: float = DeltaOption, drop_worst: int = DropOption, kind: Optional[str] = KindOption,
    via: Optional[str] = ViaOption, json_out: bool = JsonOption,
) -> None:
    """Forecast: the compute-optimal model size and samples for --budget, or the metric of --params/--samples."""
    c = parse_amount(budget, "--budget") if budget is not None else None
    n = parse_amount(params, "--params") if params is not None else None
    d = parse_amount(samples, "--samples") if samples is not None else None
    if c is None and (n is None or d is None):
        raise GaitforecastError("pass --budget FLOPS, or --params N with --samples D (or --budget with --params)")
    if c is not None and n is not None and d is not None:
        raise GaitforecastError("pass --budget, or --params with --samples, not all three")
    request = Request(metric, arch, law, kind, resamples, seed, huber_delta, drop_worst)
    if via is not None:
        with _progress("fitting two steps"):
            out = forecast.forecast_via(forecast.read_runs(store), request, via, budget=c, params=n, samples=d)
        title = f"{out['metric']} via {via} at {out['budget_flops']:.3g} FLOPs ({out['law']} law + sigmoid link)"
        extra: tuple[tuple[str, str | None], ...] = (("via_predicted", None),)
    else:
        fitted = _fitted(store, request, budget=n is None)
        out = (forecast.forecast_budget(fitted, c) if n is None
               else forecast.forecast_config(fitted, n, samples=d, budget=c))
        title = f"{out['metric']} forecast at {out['budget_flops']:.3g} FLOPs ({out['law']} law)"
        extra = (("samples_per_param", "samples_per_param_ci"),)
    if json_out:
        emit_json(out)
        return
    _print_forecast(title, out, (("params_opt", "params_opt_ci"), ("samples_opt", "samples_opt_ci"), *extra,
                                 ("params", None), ("samples", None), ("predicted", "predicted_ci"),
                                 ("predicted (one run)", "predicted_pi")))
    _warn(out["warnings"])


@app.command("backtest")
def backtest_cmd(
    fit_below: Optional[str] = typer.Option(
        None, "--fit-below", help="Fit on runs with at most this many FLOPs, predict the rest (default: 65 % up the "
                                  "log-compute range)."),
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    arch: Optional[str] = ArchOption,
    resamples: int = typer.Option(forecast.BACKTEST_RESAMPLES, "--resamples", help="Bootstrap resamples."),
    seed: int = SeedOption, rank: bool = typer.Option(True, "--rank/--no-rank", help="Also rank every candidate law."),
    drop_worst: int = DropOption, kind: Optional[str] = KindOption, via: Optional[str] = ViaOption,
    json_out: bool = JsonOption,
) -> None:
    """Rollout backtest: fit small runs, predict larger ones, score the error and the interval coverage."""
    cutoff = parse_amount(fit_below, "--fit-below") if fit_below is not None else None
    request = Request(metric, arch, law, kind, resamples, seed, forecast.DEFAULT_HUBER_DELTA, drop_worst)
    runs = forecast.read_runs(store)
    if via is not None:
        with _progress("backtesting two steps"):
            out = forecast.backtest_via(runs, request, via, fit_below=cutoff)
        _print_backtest_via(out, json_out)
        return
    with _progress("backtesting"):
        report = forecast.backtest(runs, request, fit_below=cutoff, rank=rank)
    if json_out:
        emit_json(report.to_dict())
        return
    result, ranking, name = report.result, report.ranking, report.selected
    console.print(
        f"{name} law fitted on {result.n_fit} runs <= {result.fit_below:.3g} FLOPs, tested on {result.n_test}: "
        f"median |rel error| {result.median_rel_error:.2%}, mean {result.mean_rel_error:.2%}, "
        f"median |error| {result.median_abs_error:.3g}, bias {result.bias:+.2%}, "
        f"95 % PI coverage {result.coverage:.0%} (median width {result.median_interval_width:.3g})", highlight=False)
    if ranking is not None and report.best_ranked != name:
        console.print(f"the rollout ranking puts {report.best_ranked} first; pass --law {report.best_ranked} "
                      "(or --law auto) to report it", highlight=False)
    if ranking is not None:
        table = Table(title="candidate laws by held-out error (best first)")
        for col in ("law", "median |rel err|", "bias", "coverage", "note"):
            table.add_column(col)
        for row in ranking.itertuples():
            failed = isinstance(row.error, str)  # else None or NaN: the form was backtested
            figures = ("-", "-", "-") if failed else (f"{row.median_rel_error:.2%}", f"{row.bias:+.2%}",
                                                      f"{row.coverage:.0%}")
            table.add_row(row.law, *figures, row.error if failed else "")
        console.print(table)
    _warn(report.notes)


def _print_backtest_via(out: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(out)
        return
    direct, name, metric, via = out["direct"], out["law"], out["metric"], out["via"]
    console.print(f"{metric} via {via} ({name} law + sigmoid link), fitted on {out['n_fit']} runs <= "
                  f"{out['fit_below']:.3g} FLOPs, tested on {out['n_test']}: median |error| "
                  f"{out['median_abs_error']:.3g}, 95 % PI coverage {out['coverage']:.0%} (median width "
                  f"{out['median_interval_width']:.3g})", highlight=False)
    console.print(f"direct {name} law on {metric}: median |error| {direct['median_abs_error']:.3g}, coverage "
                  f"{direct['coverage']:.0%} (median width {direct['median_interval_width']:.3g}); better: "
                  f"{out['winner']}", highlight=False)
    _warn(out["warnings"])


@app.command("compare")
def compare_cmd(
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    resamples: int = typer.Option(forecast.COMPARE_RESAMPLES, "--resamples", help="Bootstrap resamples per architecture."),
    seed: int = SeedOption, kind: Optional[str] = KindOption, json_out: bool = JsonOption,
) -> None:
    """Compare two architectures: the metric difference at matched compute, with an interval; with the Chinchilla
    law also each one's exponents and the difference in the data exponent beta, with intervals."""
    runs = forecast.read_runs(store)
    with _progress("comparing"):
        result = forecast.compare(runs, Request(metric=metric, law=law, kind=kind, resamples=resamples, seed=seed))
    out = result.to_dict()
    if json_out:
        emit_json(out)
        return
    table = Table(title=f"{result.metric}: {result.arch_b} minus {result.arch_a} at matched compute ({result.law} law)")
    for col in ("FLOPs", result.arch_a, result.arch_b, "difference", "95 % interval", "better"):
        table.add_column(col)
    for row in result.rows.to_dict(orient="records"):
        table.add_row(f"{row['budget_flops']:.3g}", f"{row[result.arch_a]:.4g}", f"{row[result.arch_b]:.4g}",
                      f"{row['diff']:+.4g}", f"[{row['diff_lo']:+.4g}, {row['diff_hi']:+.4g}]",
                      row["better"] if isinstance(row["better"], str) else "-")  # None or NaN: neither
    console.print(table)
    console.print(f"dominates: {result.dominates or 'neither at every budget'}", highlight=False)
    if result.exponents is not None:
        _print_exponents(result.exponents)
    _warn(result.warnings + out["exponents_notes"])


def _print_exponents(exponents: laws.ExponentComparison) -> None:
    """Each family's exponents with their intervals, then the verdict on the data exponent."""
    table = Table(title="exponents (alpha: parameters, beta: data; larger falls faster)")
    for col in ("architecture", "alpha", "95 % interval", "beta", "95 % interval"):
        table.add_column(col)

    def cells(value: float, lo: float | None, hi: float | None) -> tuple[str, str]:
        return f"{value:.3g}", "held (not identified)" if lo is None else f"[{lo:.3g}, {hi:.3g}]"

    for arch, got in exponents.exponents.items():
        table.add_row(arch, *cells(*got["alpha"]), *cells(*got["beta"]))
    console.print(table)
    console.print(f"data scaling: {exponents.verdict()}", highlight=False)

"""`gaitforecast fit | predict | backtest | compare`: the analysis engine's face. Thin: read runs, call laws, print."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from gaitforecast.cli._common import JsonOption, StoreOption, app, console, emit_json, labelled, parse_amount
from gaitforecast.errors import GaitforecastError
from gaitforecast.metrics import MAIN_METRIC
from gaitforecast import laws
from gaitforecast.laws.fit import LawFitter

MetricOption = typer.Option(
    None, "--metric", help=f"Metric to fit (default: {MAIN_METRIC}, else the store's only metric)."
)
LawOption = typer.Option(
    "default", "--law",
    help="Law form: chinchilla, power-compute, power-params, power-data, sigmoid-compute; 'default' "
         "(chinchilla when runs vary in params and samples, else power-compute) or 'auto' (best backtest).",
)
ArchOption = typer.Option(None, "--arch", help="Only runs of this architecture (default: the most common one).")
ResamplesOption = typer.Option(1000, "--resamples", help="Bootstrap resamples for the intervals.")
SeedOption = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the bootstrap resampling (0 to 2^32 - 1).")
DeltaOption = typer.Option(1e-3, "--huber-delta", help="Huber delta on log residuals (1e-3 as Hoffmann/Epoch).")
KindOption = typer.Option(
    None, "--kind", help="What the metric is: loss, accuracy or error (default: as stored by import-runs --kind, "
                         "else from its name; asked for when the name does not say).")
ViaOption = typer.Option(
    None, "--via", help="Two-step forecast of an accuracy: a law for this loss metric (e.g. ssl_loss_heldout), "
                        "then a fitted sigmoid link from it to the accuracy; bootstrap through both steps.")
DropOption = typer.Option(
    0, "--drop-worst", help="Leave out the K runs with the worst metric (Epoch drops 5 on the Chinchilla table).")


def _load_runs(store: Path, arch: str | None, all_archs: bool = False, metric: str | None = None,
               kind: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Finished runs of the store, restricted to one architecture unless ``all_archs``; ``kind`` (--kind) is
    recorded for ``metric`` on the frame, where laws.prepare reads it."""
    from gaitforecast.store import RunStore

    runs = _with_kind(RunStore(store).runs(status="done"), metric, kind)
    notes: list[str] = []
    if len(runs) == 0:
        raise GaitforecastError(
            f"the store {store} has no finished runs; run `gaitforecast run-small` or "
            f"`gaitforecast import-runs FILE --store {store}` first"
        )
    if all_archs or "arch" not in runs.columns:
        return runs, notes
    counts = runs["arch"].fillna("").astype(str).value_counts()
    if arch is not None:
        if arch not in counts.index:
            raise GaitforecastError(f"no finished runs of arch {arch!r}; the store has: {', '.join(counts.index)}")
        return runs[runs["arch"].astype(str) == arch], notes
    if len(counts) > 1:
        notes.append(f"runs of {len(counts)} architectures; fitting {counts.index[0]!r} (the most runs), "
                     "pick another with --arch or use `gaitforecast compare`")
    return runs[runs["arch"].fillna("").astype(str) == counts.index[0]], notes


@contextlib.contextmanager
def _progress(what: str) -> Iterator[None]:
    """A status line on stderr (terminals only) that follows the engine's steps, with the time so far."""
    if not console.is_terminal:
        yield
        return
    start = time.monotonic()
    with console.status(what) as status:
        with laws.progress.reporting(lambda msg: status.update(f"{msg} ({time.monotonic() - start:.0f} s)")):
            yield


def _with_kind(runs: pd.DataFrame, metric: str | None, kind: str | None) -> pd.DataFrame:
    if kind is None or len(runs) == 0:
        return runs
    from gaitforecast.metrics import check_kind

    name = laws.choose_metric(runs, metric)
    runs.attrs["metric_kinds"] = {**runs.attrs.get("metric_kinds", {}), name: check_kind(kind)}
    return runs


def _fit(store: Path, metric: str | None, law: str, arch: str | None, resamples: int, seed: int,
         delta: float, drop_worst: int, budget: bool = False,
         kind: str | None = None) -> tuple[pd.DataFrame, laws.BootstrapResult, list[str]]:
    with _progress("fitting"):
        return _fit_inner(store, metric, law, arch, resamples, seed, delta, drop_worst, budget, kind)


def _fit_inner(store: Path, metric: str | None, law: str, arch: str | None, resamples: int, seed: int,
               delta: float, drop_worst: int, budget: bool = False,
               kind: str | None = None) -> tuple[pd.DataFrame, laws.BootstrapResult, list[str]]:
    runs, notes = _load_runs(store, arch, metric=metric, kind=kind)
    data = laws.prepare(runs, metric, ()).drop_worst(drop_worst)
    if drop_worst:
        notes.append(f"left out the {drop_worst} run(s) with the worst {data.metric} (--drop-worst)")
    name = laws.resolve_law(data, law, budget=budget)
    try:
        boot = laws.bootstrap(LawFitter(law=name, huber_delta=delta).fit(data), n_resamples=resamples, seed=seed)
        loose = ", ".join(f"{k} (95 % interval [{lo:.3g}, {hi:.3g}])"
                          for k, (lo, hi) in laws.unidentified_exponents(boot).items())
        why = f"leaves {loose} unidentified"
    except GaitforecastError as exc:  # the bootstrap could not refit the form at all
        if law != "default":
            raise
        boot, loose, why = None, "all", f"could not be bootstrapped on these runs ({str(exc).rstrip('.')})"
    if law == "default" and loose:  # the form the user did not choose explicitly is not identified: fall back
        best = laws.fallback_law(data, instead_of=name, budget=budget)
        if best != name:
            notes.append(f"the {name} law {why}; fitted and forecast with {best} instead, the "
                         f"form with the lowest rollout-backtest error (pass --law {name} to keep it)")
            boot = laws.bootstrap(LawFitter(law=best, huber_delta=delta).fit(data), n_resamples=resamples, seed=seed)
    return runs, boot, notes


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


@app.command("fit")
def fit_cmd(
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    arch: Optional[str] = ArchOption, resamples: int = ResamplesOption, seed: int = SeedOption,
    huber_delta: float = DeltaOption, drop_worst: int = DropOption, kind: Optional[str] = KindOption,
    json_out: bool = JsonOption,
) -> None:
    """Fit a scaling law to the finished runs, with bootstrap intervals on every parameter."""
    runs, boot, notes = _fit(store, metric, law, arch, resamples, seed, huber_delta, drop_worst, kind=kind)
    diag = laws.diagnose(boot)
    out: dict[str, Any] = boot.to_dict()
    out["params_units"] = out.pop("fitted_as")
    out["kind"] = boot.law.data.kind
    iso = laws.isoflop(boot.law.data)
    out.update({"diagnostics": diag, "warnings": notes + diag["warnings"],
                "isoflop": iso.to_dict() if iso else None})
    if json_out:
        emit_json(out)
        return
    _print_params(boot)
    if iso:
        console.print(f"IsoFLOP cross-check: N_opt ~ C^{iso.exponent:.3f} ({iso.note})", highlight=False)
    _warn(out["warnings"])


def _one_config(boot: laws.BootstrapResult, cost: laws.CostModel, params: float, samples: float) -> dict:
    flops = float(cost.flops_per_sample(np.array([params]))[0] * samples)
    bands = boot.predict(params=params, samples=samples, flops=flops).iloc[0]
    return {
        "budget_flops": flops, "params": params, "samples": samples, "params_opt": None, "samples_opt": None,
        "params_opt_ci": None, "samples_opt_ci": None, "predicted": float(bands["predicted"]),
        "predicted_ci": [float(bands["ci_lo"]), float(bands["ci_hi"])],
        "predicted_pi": [float(bands["pi_lo"]), float(bands["pi_hi"])],
    }


def _with_allocation_notes(notes: list[str], alloc: laws.Allocation) -> list[str]:
    """A forecast's warnings: "not a recommendation" first when it is not one, then ``notes``, then the
    allocation's own notes."""
    first = [f"not a recommendation: {alloc.why}"] if not alloc.recommended else []
    return first + list(notes) + list(alloc.notes)


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
    if via is not None:
        with _progress("fitting two steps"):
            _predict_via(store, metric, via, law, arch, resamples, seed, kind, c, n, d, json_out)
        return
    runs, boot, notes = _fit(store, metric, law, arch, resamples, seed, huber_delta, drop_worst,
                             budget=n is None, kind=kind)
    cost = laws.cost_model_for(runs, arch)
    if n is not None:
        if d is None:
            d = c / float(cost.flops_per_sample(np.array([n]))[0])
        out = _one_config(boot, cost, n, d)
        notes = list(notes)
    else:
        alloc = laws.allocate(boot, c, cost)
        out = alloc.to_dict()
        notes = _with_allocation_notes(notes, alloc)
    law_ = boot.law
    out.update({"law": law_.law, "metric": law_.metric, "kind": law_.data.kind, "cost_model": cost.name,
                "n_runs": law_.n_runs,
                "predicted_units": law_.metric, "warnings": notes + laws.diagnose(boot)["warnings"]})
    out.pop("notes", None)
    if json_out:
        emit_json(out)
        return
    _print_forecast(f"{law_.metric} forecast at {out['budget_flops']:.3g} FLOPs ({law_.law} law)", out, (
        ("params_opt", "params_opt_ci"), ("samples_opt", "samples_opt_ci"),
        ("samples_per_param", "samples_per_param_ci"), ("params", None), ("samples", None),
        ("predicted", "predicted_ci"), ("predicted (one run)", "predicted_pi")))
    _warn(out["warnings"])


def _predict_via(store: Path, metric: str | None, via: str, law: str, arch: str | None, resamples: int, seed: int,
                 kind: str | None, c: float | None, n: float | None, d: float | None, json_out: bool) -> None:
    """`predict --via`: step 1 a law for the loss ``via``, step 2 the sigmoid link to the accuracy."""
    from gaitforecast.laws.allocate import optimal_draws
    from gaitforecast.laws.twostep import fit_two_step

    runs, notes = _load_runs(store, arch, metric=metric, kind=kind)
    metric = laws.choose_metric(runs, metric)
    name = "chinchilla" if law in ("default", "auto") else law
    model = fit_two_step(runs, metric, via, law=name, n_resamples=resamples, seed=seed)
    cost = laws.cost_model_for(runs, arch)
    boot = model.loss
    out: dict[str, Any] = model.to_dict()
    if n is not None:
        if d is None:
            d = c / float(cost.flops_per_sample(np.array([n]))[0])
        bands = model.predict(params=n, samples=d, flops=float(cost.flops_per_sample(np.array([n]))[0] * d)).iloc[0]
        out.update({"budget_flops": float(cost.flops_per_sample(np.array([n]))[0] * d), "params": n, "samples": d,
                    "params_opt": None, "samples_opt": None})
    else:  # the link falls as the loss rises, so the loss law's compute-optimal split is the accuracy's too
        alloc = laws.allocate(boot, c, cost)
        thetas = np.vstack([boot.law.theta[None, :], boot.thetas])
        loss = boot.law.data.to_metric_units(optimal_draws(boot.law, thetas, c, cost)[2])
        bands = model.bands(loss[:1], loss[1:, None]).iloc[0]
        out.update({k: v for k, v in alloc.to_dict().items() if k not in ("predicted", "predicted_ci", "predicted_pi")})
        notes = _with_allocation_notes(notes, alloc)
    out.update({"predicted": float(bands["predicted"]),
                "predicted_ci": [float(bands["ci_lo"]), float(bands["ci_hi"])],
                "predicted_pi": [float(bands["pi_lo"]), float(bands["pi_hi"])],
                "via_predicted": float(bands["via_predicted"]), "law": name, "kind": "accuracy",
                "cost_model": cost.name, "predicted_units": metric, "warnings": notes})
    out.pop("notes", None)
    if json_out:
        emit_json(out)
        return
    _print_forecast(f"{metric} via {via} at {out['budget_flops']:.3g} FLOPs ({name} law + sigmoid link)", out, (
        ("params_opt", "params_opt_ci"), ("samples_opt", "samples_opt_ci"), ("params", None), ("samples", None),
        ("via_predicted", None), ("predicted", "predicted_ci"), ("predicted (one run)", "predicted_pi")))
    _warn(notes)


@app.command("backtest")
def backtest_cmd(
    fit_below: Optional[str] = typer.Option(
        None, "--fit-below", help="Fit on runs with at most this many FLOPs, predict the rest (default: 65 % up the "
                                  "log-compute range)."),
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    arch: Optional[str] = ArchOption, resamples: int = typer.Option(500, "--resamples", help="Bootstrap resamples."),
    seed: int = SeedOption, rank: bool = typer.Option(True, "--rank/--no-rank", help="Also rank every candidate law."),
    drop_worst: int = DropOption, kind: Optional[str] = KindOption, via: Optional[str] = ViaOption,
    json_out: bool = JsonOption,
) -> None:
    """Rollout backtest: fit small runs, predict larger ones, score the error and the interval coverage."""
    cutoff = parse_amount(fit_below, "--fit-below") if fit_below is not None else None
    runs, notes = _load_runs(store, arch, metric=metric, kind=kind)
    if via is not None:
        with _progress("backtesting two steps"):
            _backtest_via(runs, metric, via, law, cutoff, resamples, seed, notes, json_out)
        return
    data = laws.prepare(runs, metric, ("flops",)).drop_worst(drop_worst)
    with _progress("ranking the candidate laws"):
        ranking = (laws.rank_forms(data, fit_below=cutoff, n_resamples=200, seed=seed)
                   if (rank or law == "auto") else None)
    if law == "auto":
        ok = ranking[ranking["error"].isna()]
        if ok.empty:
            raise GaitforecastError("no law could be backtested: " + "; ".join(ranking["error"].astype(str)))
        name = str(ok.iloc[0]["law"])
    else:
        name = laws.resolve_law(data, law)
    with _progress("backtesting"):
        result = laws.backtest(data, law=name, fit_below=cutoff, n_resamples=resamples, seed=seed)
    out = result.to_dict()
    out.update({
        "errors_in": f"{data.metric} (relative, (predicted - actual) / actual; median_abs_error in {data.metric} "
                     "units, |predicted - actual|)",
        "ranking": None if ranking is None else ranking.to_dict(orient="records"),
        "selected": name,  # the law whose figures are reported above
        "best_ranked": None if ranking is None else str(ranking.iloc[0]["law"]), "kind": data.kind, "warnings": notes,
    })
    if json_out:
        emit_json(out)
        return
    console.print(
        f"{name} law fitted on {result.n_fit} runs <= {result.fit_below:.3g} FLOPs, tested on {result.n_test}: "
        f"median |rel error| {result.median_rel_error:.2%}, mean {result.mean_rel_error:.2%}, "
        f"median |error| {result.median_abs_error:.3g}, bias {result.bias:+.2%}, "
        f"95 % PI coverage {result.coverage:.0%} (median width {result.median_interval_width:.3g})", highlight=False)
    if ranking is not None and str(ranking.iloc[0]["law"]) != name:
        console.print(f"the rollout ranking puts {ranking.iloc[0]['law']} first; pass --law "
                      f"{ranking.iloc[0]['law']} (or --law auto) to report it", highlight=False)
    if ranking is not None:
        table = Table(title="candidate laws by held-out error (best first)")
        for col in ("law", "median |rel err|", "bias", "coverage", "note"):
            table.add_column(col)
        for row in ranking.itertuples():
            table.add_row(row.law, f"{row.median_rel_error:.2%}", f"{row.bias:+.2%}", f"{row.coverage:.0%}",
                          row.error or "")
        console.print(table)
    _warn(notes)


def _backtest_via(runs: pd.DataFrame, metric: str | None, via: str, law: str, cutoff: float | None,
                  resamples: int, seed: int, notes: list[str], json_out: bool) -> None:
    """`backtest --via`: the two-step forecast's rollout beside the direct law's, on the same cutoff."""
    from gaitforecast.laws.twostep import backtest_two_step

    metric = laws.choose_metric(runs, metric)
    name = "chinchilla" if law in ("default", "auto") else law
    two = backtest_two_step(runs, metric, via, law=name, fit_below=cutoff, n_resamples=resamples, seed=seed)
    direct = laws.backtest(runs, metric, law=name, fit_below=two.fit_below, n_resamples=resamples, seed=seed)
    out = two.to_dict()
    out.update({"law": name, "metric": metric, "via": via, "kind": "accuracy", "warnings": notes,
                "direct": {"law": name, "median_abs_error": direct.median_abs_error,
                           "median_rel_error": direct.median_rel_error, "coverage": direct.coverage,
                           "median_interval_width": direct.median_interval_width},
                "winner": "two-step" if two.median_abs_error < direct.median_abs_error else "direct"})
    if json_out:
        emit_json(out)
        return
    console.print(f"{metric} via {via} ({name} law + sigmoid link), fitted on {two.n_fit} runs <= "
                  f"{two.fit_below:.3g} FLOPs, tested on {two.n_test}: median |error| {two.median_abs_error:.3g}, "
                  f"95 % PI coverage {two.coverage:.0%} (median width {two.median_interval_width:.3g})",
                  highlight=False)
    console.print(f"direct {name} law on {metric}: median |error| {direct.median_abs_error:.3g}, coverage "
                  f"{direct.coverage:.0%} (median width {direct.median_interval_width:.3g}); better: {out['winner']}",
                  highlight=False)
    _warn(notes)


@app.command("compare")
def compare_cmd(
    store: Path = StoreOption, metric: Optional[str] = MetricOption, law: str = LawOption,
    resamples: int = typer.Option(500, "--resamples", help="Bootstrap resamples per architecture."),
    seed: int = SeedOption, kind: Optional[str] = KindOption, json_out: bool = JsonOption,
) -> None:
    """Compare two architectures: the metric difference at matched compute, with an interval."""
    runs, _ = _load_runs(store, None, all_archs=True, metric=metric, kind=kind)
    if law in ("default", "auto"):  # one form for both: chinchilla only if each architecture's runs carry it
        law = laws.comparison_law(runs, metric)
    with _progress("comparing"):
        result = laws.compare(runs, metric, law=law, n_resamples=resamples, seed=seed)
    out = result.to_dict()
    if json_out:
        emit_json(out)
        return
    table = Table(title=f"{result.metric}: {result.arch_b} minus {result.arch_a} at matched compute ({law} law)")
    for col in ("FLOPs", result.arch_a, result.arch_b, "difference", "95 % interval", "better"):
        table.add_column(col)
    for row in result.rows.to_dict(orient="records"):
        table.add_row(f"{row['budget_flops']:.3g}", f"{row[result.arch_a]:.4g}", f"{row[result.arch_b]:.4g}",
                      f"{row['diff']:+.4g}", f"[{row['diff_lo']:+.4g}, {row['diff_hi']:+.4g}]", row["better"] or "-")
    console.print(table)
    console.print(f"dominates: {result.dominates or 'neither at every budget'}", highlight=False)

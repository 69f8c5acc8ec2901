"""`gaitforecast suggest` (which runs to train next) and the face of `run-small --adaptive` (sweep/adaptive.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from gaitforecast.cli._common import (
    JsonOption, StoreOption, app, console, emit_json, parse_amount, stops_cleanly, table_console,
)
from gaitforecast.cli.cmd_laws import ArchOption, KindOption, MetricOption, SeedOption, _progress, _warn
from gaitforecast.errors import GaitforecastError

TARGET_FACTOR = 10.0  # default target budget: this many times the largest run or candidate


def _spec_candidates(store: Path, arch: str, spec: Optional[Path], profile: str
                     ) -> tuple[list[Any], str, list[str]]:
    """The spec's planned runs of ``arch`` that the store has not finished, the spec's name and warnings."""
    from gaitforecast.store import RunStore
    from gaitforecast.sweep.planner import plan
    from gaitforecast.sweep.spec import load_profile, load_spec

    sweep = load_spec(spec) if spec else load_profile(profile)
    planned = [r for r in plan(sweep) if r.arch == arch]
    if not planned:
        raise GaitforecastError(f"the sweep {sweep.name!r} plans no {arch} runs; pass the --spec (or --profile) "
                                "the store's runs were swept with")
    done = RunStore(store).done_ids()
    left = [r for r in planned if r.id not in done]
    notes = []
    if len(left) == len(planned):
        notes.append(f"none of the {len(planned)} {arch} runs of sweep {sweep.name!r} is in the store: the "
                     "candidates may not match how its runs were trained; pass the --spec they were swept with")
    return left, sweep.name, notes


def _candidates(runs: pd.DataFrame, store: Path, arch: str, spec: Optional[Path], profile: str,
                cost: Any) -> tuple[Any, list[dict], str, list[str]]:
    """(laws.design.Candidates, one record per candidate, where they come from, warnings). Own runs: the sweep
    spec's runs not yet finished; an imported table: its own N x D grid's empty cells."""
    from gaitforecast.laws.candidates import Candidates, table_grid

    own = "source" in runs.columns and (runs["source"].astype(str) == "gaitforecast").any()
    if own:
        left, name, notes = _spec_candidates(store, arch, spec, profile)
        if not left:
            raise GaitforecastError(f"every {arch} run of sweep {name!r} is in the store; widen the spec's grid "
                                    "(more widths, fractions or seeds) to get suggestions")
        records = [{"arch": r.arch, "id": r.id, "label": r.label(), "width": r.width, "fraction": r.fraction,
                    "seed": r.seed} for r in left]
        cands = Candidates(np.array([r.params for r in left], float), np.array([r.samples for r in left], float),
                           np.array([r.flops for r in left], float), tuple(r.label() for r in left))
        return cands, records, f"sweep {name!r}: {len(left)} planned {arch} runs not yet in the store", notes
    if "samples" not in runs.columns or runs["samples"].isna().any():
        raise GaitforecastError("the runs have no samples for every row; import them with a samples (or flops) "
                                "column so the grid of model size x data can be formed")
    params, samples = table_grid(runs["params"].to_numpy(float), runs["samples"].to_numpy(float))
    if not len(params):
        raise GaitforecastError("every cell of the table's N x D grid already has a run; nothing left to suggest")
    flops = cost.flops_per_sample(params) * samples
    labels = tuple(f"N {p:.3g} x D {d:.3g}" for p, d in zip(params, samples))
    records = [{"arch": arch, "id": None, "label": label} for label in labels]
    return (Candidates(params, samples, flops, labels), records,
            f"the table's N x D grid: {len(params)} empty cells", [])


@app.command("suggest")
def suggest_cmd(
    budget: Optional[str] = typer.Option(None, "--budget", help="FLOPs the suggested runs may cost together: 3e17, "
                                                                "300P."),
    target_budget: Optional[str] = typer.Option(
        None, "--target-budget", help="Compute of the forecast to sharpen (default: 10x the largest run or "
                                      "candidate)."),
    n: int = typer.Option(5, "--n", min=1, max=1000, help="How many runs to suggest, at most."),
    store: Path = StoreOption, metric: Optional[str] = MetricOption, arch: Optional[str] = ArchOption,
    kind: Optional[str] = KindOption,
    law: str = typer.Option("default", "--law", help="Law form; default: chinchilla when the runs and candidates "
                                                     "vary in parameters and samples, else power-compute."),
    objective: str = typer.Option("metric", "--objective", help="What to sharpen: metric (the predicted metric "
                                                                "at the target's compute-optimal split) or n_opt "
                                                                "(the optimal model size)."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="Sweep spec whose grid holds the candidate runs "
                                                             "(own runs; default: --profile)."),
    profile: str = typer.Option("default", "--profile", help="Shipped sweep whose grid holds the candidates."),
    resamples: int = typer.Option(300, "--resamples", help="Bootstrap resamples (the ensemble the ranking uses)."),
    seed: int = SeedOption, json_out: bool = JsonOption,
) -> None:
    """Which runs to train next: rank candidate runs by expected narrowing of the forecast at a target budget per
    FLOP, within a compute budget."""
    from gaitforecast import forecast
    from gaitforecast.laws.belief import OBJECTIVES
    from gaitforecast.laws.design import plan_next

    if budget is None:
        raise GaitforecastError("pass --budget FLOPS: what the suggested runs may cost together (e.g. 3e13)")
    cap = parse_amount(budget, "--budget")
    if objective not in OBJECTIVES:
        raise GaitforecastError(f"--objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    request = forecast.Request(metric=metric, arch=arch, kind=kind)
    runs, arch_name, notes = forecast.select_runs(forecast.read_runs(store), request)
    arch_name = arch_name or ""
    cost = forecast.cost_model(runs, arch_name or None)
    cands, records, source, more = _candidates(runs, store, arch_name, spec, profile, cost)
    notes += more
    largest = max(float(runs["flops"].max()) if "flops" in runs.columns else 0.0, float(cands.flops.max()))
    target = parse_amount(target_budget, "--target-budget") if target_budget else TARGET_FACTOR * largest
    with _progress("designing"):
        design = plan_next(runs, metric, cands, target, cost, cap, n=n, law=law, n_resamples=resamples, seed=seed,
                           objective=objective, kind=kind)
    out = design.to_dict()
    out["suggestions"] = [{**records[s.index], **s.to_dict()} for s in design.suggestions]
    for row in out["suggestions"]:
        row.pop("index", None)
    out.update({"candidates_from": source, "cost_model": cost.name, "warnings": notes + list(design.notes)})
    for key in ("plan_runs", "plan_flops", "plan_width"):
        out.pop(key, None)
    if json_out:
        emit_json(out)
        return
    _print_design(out)
    _warn(out["warnings"])


def _print_design(out: dict) -> None:
    units = out["width_units"]
    if out["current_width"] is not None:
        lo, hi = out["interval"]
        console.print(f"forecast at {out['target_budget']:.3g} FLOPs ({out['law']} law): {out['predicted']:.4g}, "
                      f"95 % interval [{lo:.4g}, {hi:.4g}], width {out['current_width']:.4g} ({units})",
                      highlight=False, soft_wrap=True)
    console.print(f"candidates: {out['candidates_from']}; {out['n_affordable']} fit the budget of "
                  f"{out['budget']:.3g} FLOPs", highlight=False, soft_wrap=True)
    table = Table(title=f"next runs, best first ({out['spent']:.3g} FLOPs together)")
    for col in ("#", "run", "params", "samples", "FLOPs", "expected width", "why"):
        table.add_column(col)
    for i, row in enumerate(out["suggestions"], 1):
        width = row["expected_width"]
        table.add_row(str(i), row["label"], f"{row['params']:.3g}", f"{row['samples']:.3g}", f"{row['flops']:.3g}",
                      "-" if width is None or not np.isfinite(width) else f"{width:.4g}", row["why"])
    table_console().print(table)


def _one_bar_reporter() -> type:
    """run-small's Rich progress, with one sweep bar for the whole adaptive sweep: each step's batch replaces the
    last one's bar instead of stacking another."""
    from gaitforecast.sweep.progress import RichReporter

    class OneBar(RichReporter):
        def start(self, total: int, skipped: int) -> None:
            if self._sweep is not None:
                self.progress.remove_task(self._sweep)
            super().start(total, skipped)

    return OneBar


def run_adaptive_cmd(sweep: Any, runs: list, store: Path, adaptive: bool, budget: Optional[str],
                     target_budget: Optional[str], metric: Optional[str], execution: dict[str, Any], json_out: bool,
                     quiet: bool, mlflow: Optional[str] = None, experiment: Optional[str] = None,
                     log_mlflow: Callable[[dict], None] | None = None) -> None:
    """`run-small --adaptive --budget FLOPS`: the adaptive sweep of sweep/adaptive.py, each batch trained by
    run_sweep with run-small's checked ``execution`` options (workers, threads, backend, backend_options, device,
    cache_dir) and optional MLflow logging; the decision log is in the store (the dashboard's Sweep design page)."""
    from gaitforecast.store import RunStore
    from gaitforecast.sweep.adaptive import grid_arch, run_adaptive
    from gaitforecast.sweep.executors import layout, run_sweep

    if not adaptive:
        raise GaitforecastError("--budget, --target-budget and --metric go with --adaptive (run-small --adaptive "
                                "--budget FLOPS); a plain run-small trains the whole grid")
    if budget is None:
        raise GaitforecastError("--adaptive needs --budget FLOPS: the compute the sweep may spend (e.g. 1e13)")
    cap = parse_amount(budget, "--budget")
    target = parse_amount(target_budget, "--target-budget") if target_budget else None
    grid = grid_arch(runs)[1]
    device = execution.get("device")
    batch = layout(execution.get("workers"), len(grid), cuda=(device or "").startswith("cuda"),
                   threads=execution.get("threads"))[0]  # one run per worker each step
    run_store = RunStore(store)
    started = time.perf_counter()
    logger = None
    with stops_cleanly(f"finished runs and every decision are kept in {store}; rerun the same command to "
                       "resume the adaptive sweep"):
        with _one_bar_reporter()(console, quiet=quiet) as reporter:
            if mlflow is not None:
                from gaitforecast.integrations.mlflow_io import MlflowLogger

                logger = MlflowLogger(mlflow, experiment or sweep.name, store, note=reporter.note)

            def train(chosen: list) -> Any:
                return run_sweep(chosen, run_store, reporter=reporter, on_done=logger, **execution)

            summary = run_adaptive(runs, run_store, cap, train, target_budget=target, metric=metric, batch=batch,
                                   spec_name=sweep.name, note=reporter.note)
    doc = summary.to_dict()
    doc.update({"spec": sweep.name, "store": str(store), "wall_time_s": time.perf_counter() - started})
    if logger is not None:
        doc["mlflow"] = logger.finish(run_store, [r.id for r in grid])
        if log_mlflow is not None:
            log_mlflow(doc["mlflow"])
    if json_out:
        emit_json(doc)
    if summary.stopped.startswith("runs did not finish"):
        raise typer.Exit(1)


__all__ = ["suggest_cmd", "run_adaptive_cmd"]

"""`gaitforecast run-small` (a sweep from a profile or spec file) and `gaitforecast train` (one run from flags)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from gaitforecast import __version__
from gaitforecast.cli._common import (
    DEFAULT_STORE, JsonOption, StoreOption, app, console, emit_json, stops_cleanly,
)
from gaitforecast.cli.cmd_summary import print_summary
from gaitforecast.errors import GaitforecastError

_EXEC = "Execution"
_MLFLOW = "MLflow"
CompileOption = typer.Option(False, "--compile", help="Train under torch.compile: faster steps after a compile of "
                             "~1-2 min per model size (cached on disk); pays on long runs.", rich_help_panel=_EXEC)


def _cache_dir(store: Path, cache_dir: Optional[Path]) -> Path:
    return Path(cache_dir) if cache_dir else Path(store).parent / "cache"


def _headline(run_store: Any) -> dict[str, Any] | None:
    """The store's summary (see `gaitforecast summary`), or None with a note when there is none to give."""
    from gaitforecast.sweep.summary import sweep_summary

    try:
        return sweep_summary(run_store)
    except GaitforecastError as exc:
        console.print(f"no summary: {str(exc)}", highlight=False, soft_wrap=True)
        return None


def _check_execution(device: Optional[str], cache_dir: Path, workers: Optional[int], threads: Optional[int],
                     compile: bool = False) -> None:
    """Refuse execution options that cannot work, before a store or a run is touched."""
    if device is not None:
        kind = device.split(":", 1)[0]
        if kind not in ("cpu", "cuda"):
            raise GaitforecastError(f"--device {device!r}: use cpu or cuda (cuda:N for one GPU)")
        if kind == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise GaitforecastError(f"--device {device}: this torch build or machine has no CUDA device; "
                                        "use --device cpu")
    if cache_dir.exists() and not cache_dir.is_dir():
        raise GaitforecastError(f"--cache-dir {cache_dir} is a file, not a folder; point it at a folder (created "
                                "if missing)")
    for name, value in (("--workers", workers), ("--threads", threads)):
        if value is not None and not 1 <= value <= 1024:
            raise GaitforecastError(f"{name} must be between 1 and 1024, got {value}")
    if compile:
        from gaitforecast.train.loop import check_compile, pick_device

        check_compile(pick_device(device))


def _slurm_layout(slurm: Any, store: Path, runs: list, workers: Optional[int], threads: Optional[int]
                  ) -> tuple[int, int, dict[str, Any]]:
    """(jobs in flight, CPUs per job, backend options) of --backend slurm: every run queued unless --workers."""
    from dataclasses import asdict

    from gaitforecast.sweep.slurm_backend import check_slurm

    check_slurm(slurm.cluster)
    options = {k: v for k, v in asdict(slurm).items() if k != "cpus_per_run"}
    options["folder"] = Path(store).resolve().parent / "slurm"
    return workers or min(len(runs), 1024), threads or slurm.cpus_per_run, options


def _log_mlflow_summary(result: dict[str, Any], noted: bool) -> None:
    where = f"experiment {result['experiment']!r} at {result['tracking_uri']}"
    text = f"MLflow: logged {result['logged']} run(s) to {where}"
    if result["already_logged"]:
        text += f" ({result['already_logged']} were there already)"
    if result["not_logged"]:
        why = "the error above" if noted else result["error"] or "the tracking store was too slow"
        text += (f"; {result['not_logged']} not logged ({why}): "
                 "they are safe in the store; rerun the same command when the tracking store works to log them")
    console.print(text, highlight=False, soft_wrap=True)


def _execute(runs: list, spec_name: str, store: Path, workers: Optional[int], backend: str,
             device: Optional[str], cache_dir: Optional[Path], json_out: bool, quiet: bool,
             threads: Optional[int] = None, slurm: Any = None, mlflow: Optional[str] = None,
             experiment: Optional[str] = None, compile: bool = False) -> None:
    """Run planned runs with progress on stderr; print the summary (JSON on stdout with --json)."""
    from gaitforecast.store import RunStore

    _check_execution(device, _cache_dir(store, cache_dir), workers, threads, compile)
    backend_options = None
    if backend == "slurm":
        workers, threads, backend_options = _slurm_layout(slurm, store, runs, workers, threads)
    from gaitforecast.sweep.executors import run_sweep
    from gaitforecast.sweep.planner import summarize
    from gaitforecast.sweep.progress import RichReporter

    run_store = RunStore(store)
    started = time.perf_counter()
    logger = None
    with stops_cleanly(f"finished runs are kept in {store}; the runs in flight were marked interrupted. "
                       "Rerun the same command to resume."):
        with RichReporter(console, quiet=quiet) as reporter:
            if mlflow is not None:
                from gaitforecast.integrations.mlflow_io import MlflowLogger

                logger = MlflowLogger(mlflow, experiment or spec_name, store, note=reporter.note)
            summary = run_sweep(runs, run_store, cache_dir=_cache_dir(store, cache_dir), workers=workers,
                                backend=backend, reporter=reporter, device=device, threads=threads,
                                backend_options=backend_options, on_done=logger, compile=compile)
    rows = []
    for r in runs:
        status = ("done" if r.id in summary.done else "failed" if r.id in summary.failed
                  else "interrupted" if r.id in summary.interrupted else "skipped")
        res = summary.results.get(r.id, {})
        rows.append({"id": r.id, "arch": r.arch, "width": r.width, "fraction": r.fraction, "seed": r.seed,
                     "params": r.params, "samples": r.samples, "flops": r.flops, "status": status,
                     "wall_time_s": res.get("wall_time_s"), "throughput": res.get("throughput"),
                     "metrics": res.get("metrics")})
    doc = {
        "gaitforecast_version": __version__, "spec": spec_name, "store": str(store), "backend": summary.backend,
        "workers": summary.workers, "threads_per_worker": summary.threads_per_worker, "planned": summary.planned,
        "skipped": summary.skipped, "done": len(summary.done), "failed": len(summary.failed),
        "interrupted": len(summary.interrupted), "stale_marked_interrupted": summary.stale_marked_interrupted,
        "wall_time_s": time.perf_counter() - started, "plan": summarize(runs), "runs": rows,
    }
    console.print(
        f"{spec_name}: {len(summary.done)} done, {summary.skipped} skipped (already done), {len(summary.failed)} "
        f"failed, {len(summary.interrupted)} interrupted in {doc['wall_time_s']:.0f} s "
        f"({summary.workers} worker(s) x {summary.threads_per_worker} thread(s)); store {store}",
        highlight=False,
    )
    if logger is not None:  # after the sweep: log the done runs MLflow lacks, wait for the queue (bounded)
        doc["mlflow"] = logger.finish(run_store, [r.id for r in runs])
        _log_mlflow_summary(doc["mlflow"], logger.noted)
    doc["summary"] = _headline(run_store)
    if doc["summary"] is not None and not json_out:
        print_summary(doc["summary"])
    if json_out:
        emit_json(doc)
    if summary.failed or summary.interrupted:
        raise typer.Exit(1)


@app.command("run-small")
def run_small(
    profile: str = typer.Option("default", "--profile", help="Shipped sweep: default (31 runs, ~20 min on "
                                "2 cores), quick (CI-sized, ~2 min) or paper (workstation/GPU)."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="A sweep spec TOML file (overrides --profile)."),
    store: Path = StoreOption,
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel runs; each gets cores // N threads.",
                                          rich_help_panel=_EXEC),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads per worker (default cores // workers).",
                                          rich_help_panel=_EXEC),
    backend: str = typer.Option("local", "--backend", help="local (process pool), ray, or slurm (one job per run; "
                                "settings in the spec's [slurm] table).", rich_help_panel=_EXEC),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available).",
                                         rich_help_panel=_EXEC),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Data cache (default: <store folder>/cache).",
                                             rich_help_panel=_EXEC),
    compile: bool = CompileOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the planned runs and exit."),
    yes: bool = typer.Option(False, "--yes", help="Plan and run a sweep of more than 1,000 runs."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars (one line per finished run)."),
    adaptive: bool = typer.Option(False, "--adaptive", help="Train only the grid's runs that narrow the forecast "
                                  "most per FLOP (seed design, then fit -> suggest -> train) until --budget is spent; "
                                  "resumable, every decision stored.", rich_help_panel="Adaptive"),
    budget: Optional[str] = typer.Option(None, "--budget", help="Compute the adaptive sweep may spend, in FLOPs "
                                         "(1e13, 300P).", rich_help_panel="Adaptive"),
    target_budget: Optional[str] = typer.Option(None, "--target-budget", help="Compute of the forecast the "
                                                "adaptive sweep sharpens (default: 10x the grid's largest run).",
                                                rich_help_panel="Adaptive"),
    metric: Optional[str] = typer.Option(None, "--metric", help="Metric whose forecast the adaptive sweep "
                                         "sharpens (default: the main metric).", rich_help_panel="Adaptive"),
    mlflow: Optional[str] = typer.Option(
        None, "--mlflow", help="Also log each finished run to this MLflow tracking URI (sqlite:///mlflow.db, "
        "file:./mlruns, http://HOST:5000); the store stays the record.", rich_help_panel=_MLFLOW),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="MLflow experiment (default: the sweep's "
                                             "name; created if missing).", rich_help_panel=_MLFLOW),
    json_out: bool = JsonOption,
) -> None:
    """Run a sweep of small pretraining runs into the store; done runs are skipped, interrupted ones redone."""
    from gaitforecast.sweep.planner import plan, summarize
    from gaitforecast.sweep.spec import load_profile, load_spec

    if experiment is not None and mlflow is None:
        raise GaitforecastError("--experiment names the MLflow experiment to log to; give --mlflow URI too")
    sweep = load_spec(spec) if spec else load_profile(profile)
    runs = plan(sweep, allow_large=yes)
    if dry_run:
        plan_doc = {"spec": sweep.name, "plan": summarize(runs),
                    "runs": [{"id": r.id, "arch": r.arch, "width": r.width, "fraction": r.fraction, "seed": r.seed,
                              "params": r.params, "unique_sequences": r.unique_sequences, "steps": r.steps,
                              "samples": r.samples, "flops": r.flops} for r in runs]}
        if json_out:
            emit_json(plan_doc)
        else:
            for r in runs:
                console.print(f"{r.id}  {r.label():28s} N={r.params:>9,} D={r.samples:>8,} steps={r.steps:>5} "
                              f"C={r.flops:.3g}", highlight=False, soft_wrap=True)
            s = plan_doc["plan"]
            console.print(f"{s['runs']} runs, compute {s['flops_min']:.3g} .. {s['flops_max']:.3g} FLOPs "
                          f"({s['compute_decades']:.2f} decades)", highlight=False, soft_wrap=True)
        return
    if adaptive or budget is not None or target_budget is not None or metric is not None:
        from gaitforecast.cli.cmd_design import run_adaptive_cmd

        cache = _cache_dir(store, cache_dir)
        _check_execution(device, cache, workers, threads, compile)
        options = None
        if backend == "slurm":
            workers, threads, options = _slurm_layout(sweep.slurm, store, runs, workers, threads)
        execution = {"workers": workers, "threads": threads, "backend": backend, "backend_options": options,
                     "device": device, "cache_dir": cache, "compile": compile}
        run_adaptive_cmd(sweep, runs, store, adaptive, budget, target_budget, metric, execution, json_out, quiet,
                         mlflow=mlflow, experiment=experiment, log_mlflow=_log_mlflow_summary)
        return
    _execute(runs, sweep.name, store, workers, backend, device, cache_dir, json_out, quiet, threads,
             slurm=sweep.slurm, mlflow=mlflow, experiment=experiment, compile=compile)


@app.command("train")
def train(
    arch: str = typer.Option("gaitpt", "--arch", help="gaitpt, gaitpt-v1 or gaitformer."),
    width: int = typer.Option(8, "--width", help="The family's width knob (GaitPT first-stage width, GaitFormer d)."),
    fraction: float = typer.Option(1.0, "--fraction", help="Fraction of the pretraining pool, in (0, 1]."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Passes over the data fraction."),
    samples: Optional[int] = typer.Option(None, "--samples", help="Sequences seen (instead of --epochs)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Run seed (0 to 2^31 - 1)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (muP base)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    frames: Optional[int] = typer.Option(None, "--frames", help="Model window in frames."),
    profile: str = typer.Option("quick", "--profile", help="Profile whose data/train/augment settings are the base."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="A spec file with exactly one run (flags ignored)."),
    store: Path = StoreOption,
    device: Optional[str] = typer.Option(None, "--device", rich_help_panel=_EXEC),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", rich_help_panel=_EXEC),
    compile: bool = CompileOption,
    quiet: bool = typer.Option(False, "--quiet"),
    mlflow: Optional[str] = typer.Option(None, "--mlflow", help="Also log the run to this MLflow tracking URI.",
                                         rich_help_panel=_MLFLOW),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="MLflow experiment (default: train).",
                                             rich_help_panel=_MLFLOW),
    json_out: bool = JsonOption,
) -> None:
    """Train and evaluate one run (from flags on top of a profile's recipe, or a one-run spec) into the store."""
    if experiment is not None and mlflow is None:
        raise GaitforecastError("--experiment names the MLflow experiment to log to; give --mlflow URI too")
    from gaitforecast.sweep.planner import plan
    from gaitforecast.sweep.spec import load_spec, parse_toml, profile_text, validate

    if spec:
        sweep = load_spec(spec)
    else:
        raw = parse_toml(profile_text(profile), f"profile {profile!r}")
        block: dict[str, Any] = {"arch": arch, "widths": [width], "fractions": [fraction], "seeds": [seed]}
        for key, value in (("epochs", epochs), ("samples", samples), ("lr", lr), ("batch_size", batch_size)):
            if value is not None:
                block[key] = value
        if frames is not None:
            raw.setdefault("data", {})["frames"] = frames
        raw["grid"] = [block]
        raw.setdefault("sweep", {})["name"] = "train"
        sweep = validate(raw, default_name="train")
    runs = plan(sweep)
    if len(runs) != 1:
        raise GaitforecastError(f"`train` runs exactly one run but the spec plans {len(runs)}; use `run-small --spec`")
    _execute(runs, sweep.name, store, 1, "local", device, cache_dir, json_out, quiet, mlflow=mlflow,
             experiment=experiment, compile=compile)


__all__ = ["run_small", "train", "DEFAULT_STORE"]

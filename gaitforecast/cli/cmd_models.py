"""`gaitforecast models` (family sizes, params, FLOPs) and `gaitforecast mup-check` (muP coordinate check)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from gaitforecast.cli._common import JsonOption, app, console, emit_json
from gaitforecast.errors import GaitforecastError
from gaitforecast.models import ARCHS, BASE_WIDTHS, FAMILY_WIDTHS, family_table


def _parse_widths(text: str | None, arch: str) -> list[int]:
    if not text:
        return list(FAMILY_WIDTHS[arch])
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise GaitforecastError(f"--widths {text!r} must be comma-separated integers, e.g. 8,16,32") from None
    if not widths or min(widths) < 1:
        raise GaitforecastError(f"--widths {text!r} must list positive integers, e.g. 8,16,32")
    return widths


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise GaitforecastError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")


@app.command("models")
def models_cmd(
    arch: str = typer.Option(None, "--arch", help=f"One of {', '.join(ARCHS)}; default: all."),
    frames: int = typer.Option(60, "--frames", help="Frames per sequence (FLOPs scale with it)."),
    widths: str = typer.Option(None, "--widths", help="Comma-separated widths; default: the family's sizes."),
    json_out: bool = JsonOption,
) -> None:
    """List each family's sizes: parameters (total, non-embedding) and forward/training FLOPs per sequence."""
    archs = [arch] if arch else list(ARCHS)
    for a in archs:
        _check_arch(a)
    if frames < 1:
        raise GaitforecastError(f"--frames must be positive, got {frames}")
    tables = {a: family_table(a, frames=frames, widths=_parse_widths(widths, a)) for a in archs}
    if json_out:
        emit_json({"frames": frames, "families": {a: t.to_dict(orient="records") for a, t in tables.items()}})
        return
    table = Table(title=f"model families (T = {frames}; params exclude the SSL head; FLOPs include it)")
    for col in ("arch", "width", "params", "non-embedding", "fwd GFLOP/seq", "train GFLOP/seq"):
        table.add_column(col, justify="left" if col == "arch" else "right")
    for t in tables.values():
        for r in t.itertuples():
            table.add_row(r.arch, str(r.width), f"{r.params:,}", f"{r.params_nonembed:,}",
                          f"{r.forward_flops / 1e9:.3f}", f"{r.train_flops_per_sample / 1e9:.2f}")
    console.print(table)


@app.command("mup-check")
def mup_check_cmd(
    arch: str = typer.Option("gaitpt", "--arch", help=f"One of {', '.join(ARCHS)}."),
    widths: str = typer.Option(None, "--widths", help="Comma-separated widths; default: base, 2x, 4x base."),
    steps: int = typer.Option(4, "--steps", help="Training steps per width."),
    lr: float = typer.Option(1e-2, "--lr", help="AdamW learning rate (large on purpose)."),
    frames: int = typer.Option(8, "--frames", help="Frames per sequence (small keeps it fast)."),
    seeds: int = typer.Option(2, "--seeds", help="Initialisations averaged per width."),
    store: Path = typer.Option(None, "--store", help="Also save the result as a 'mup_check' artifact in this store."),
    json_out: bool = JsonOption,
) -> None:
    """Coordinate check: activation sizes across widths over a few steps, under muP and standard parametrisation."""
    from gaitforecast.models.coordcheck import coord_check, coord_summary

    _check_arch(arch)
    base = BASE_WIDTHS[arch]
    width_list = _parse_widths(widths, arch) if widths else [base, 2 * base, 4 * base]
    if steps < 1 or seeds < 1 or frames < 1 or not (math.isfinite(lr) and lr > 0):
        raise GaitforecastError(f"--steps, --seeds, --frames and --lr must be positive finite numbers (--lr {lr})")
    result: dict = {"arch": arch, "widths": width_list, "steps": steps, "lr": lr, "frames": frames, "seeds": seeds}
    for param in ("mup", "sp"):
        console.print(f"coordinate check: {arch} {param} widths {width_list} ...", highlight=False)
        summary = coord_summary(coord_check(arch, width_list, steps, param, lr=lr, frames=frames, seeds=seeds))
        hidden = summary[summary["module"] != "head"]
        result[param] = {"max_ratio_hidden": float(hidden["ratio"].max()),
                         "head_ratio": float(summary.loc[summary["module"] == "head", "ratio"].iloc[0]),
                         "modules": summary.to_dict(orient="records")}
        if not json_out:
            _print_summary(summary, f"{param}: l1 = mean |activation| at step {steps - 1}")
    verdict = result["mup"]["max_ratio_hidden"] < 1.5 < result["sp"]["max_ratio_hidden"]
    result["flat_under_mup"] = verdict
    if store is not None:
        from gaitforecast.store import RunStore

        with RunStore(store).writer() as writer:
            result["artifact_key"] = writer.put_artifact("mup_check", result)
    if json_out:
        emit_json(result)
    else:
        console.print(
            f"largest width ratio of a hidden activation: muP {result['mup']['max_ratio_hidden']:.2f}, "
            f"SP {result['sp']['max_ratio_hidden']:.2f} -> {'flat under muP' if verdict else 'NOT flat: check muP'}",
            highlight=False,
        )


def _print_summary(summary, title: str) -> None:
    table = Table(title=title)
    for col in summary.columns:
        table.add_column(col, justify="left" if col == "module" else "right")
    for row in summary.itertuples(index=False):
        table.add_row(row[0], *(f"{v:.3f}" for v in row[1:]))
    console.print(table)

"""`gaitforecast data-check`: read real pose data the way a sweep would and report what is usable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from gaitforecast.cli._common import JsonOption, app, console, emit_json
from gaitforecast.errors import GaitforecastError

LAYOUTS = ("auto", "opengait", "npz", "casia-b")


def load_real(path: Path, layout: str, frames: int, min_frames: int) -> tuple[str, object, list]:
    """Read ``path`` as ``layout`` ('auto': a .npz file or an OpenGait folder); (layout, poses or suite, skipped)."""
    from gaitforecast.data.formats import casia_b_suite, read_poses

    if layout not in LAYOUTS:
        raise GaitforecastError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "casia-b":
        suite, skipped = casia_b_suite(path, frames=frames, min_frames=min_frames)
        return layout, suite, skipped
    if layout == "npz" and not Path(path).is_file():
        raise GaitforecastError(f"--layout npz needs a .npz file, {path} is not a file")
    if layout == "opengait" and Path(path).is_file():
        raise GaitforecastError(f"--layout opengait needs a folder, {path} is a file")
    loaded = read_poses(path, frames=frames, min_frames=min_frames)
    return ("npz" if Path(path).is_file() else "opengait"), loaded, list(loaded.skipped)


@app.command("data-check")
def data_check(
    path: Path = typer.Argument(..., help="An OpenGait pose tree <id>/<type>/<view>/*.pkl, or a .npz file."),
    layout: str = typer.Option("auto", help="auto | opengait | npz | casia-b (the CASIA-B protocol tree)."),
    frames: int = typer.Option(60, help="Window length sequences are cut or cycled to."),
    min_frames: int = typer.Option(15, help="Sequences shorter than this are skipped."),
    as_json: bool = JsonOption,
) -> None:
    """Read real pose data as a sweep would: count usable sequences and identities, list every skip with its reason."""
    if frames < 2 or min_frames < 1:
        raise GaitforecastError("--frames must be >= 2 and --min-frames >= 1")
    layout, loaded, skipped = load_real(path, layout, frames, min_frames)
    n = int(loaded.sequences.shape[0])
    ids = int(loaded.meta["id"].nunique()) if n else 0
    reasons = Counter(reason.split(":")[0] for _, reason in skipped)
    summary = {
        "path": str(path), "layout": layout, "sequences": n, "identities": ids, "frames": frames,
        "skipped": len(skipped), "skip_reasons": dict(reasons),
        "skipped_files": [{"path": p, "reason": r} for p, r in skipped],
    }
    if as_json:
        emit_json(summary)
    else:
        console.print(f"{path}: {n} usable sequences of {ids} identities ({layout} layout), {len(skipped)} skipped")
        for p, r in skipped[:20]:
            console.print(f"  skipped {p}: {r}", highlight=False)
        if len(skipped) > 20:
            console.print(f"  ... and {len(skipped) - 20} more (--json lists all)")
    if n == 0:
        raise GaitforecastError(f"no usable sequence under {path} ({len(skipped)} skipped); see the reasons above")

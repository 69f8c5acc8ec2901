"""Shared pieces of the command line: the Typer app, stderr console, JSON output, number parsing."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from gaitforecast.errors import GaitforecastError

app = typer.Typer(
    name="gaitforecast",
    help="Train small gait models, fit scaling laws with honest uncertainty, forecast large runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Human text and progress go to stderr; stdout carries only --json documents.
console = Console(stderr=True)

DEFAULT_STORE = Path("runs") / "gaitforecast.duckdb"
StoreOption = typer.Option(DEFAULT_STORE, "--store", help="Path of the DuckDB run store.")
JsonOption = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and non-finite floats into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def emit_json(obj: Any) -> None:
    """Write exactly one JSON document to stdout."""
    sys.stdout.write(json.dumps(_jsonable(obj), indent=2, default=str) + "\n")
    sys.stdout.flush()


_SUFFIX = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24}


def parse_amount(text: str, what: str = "budget") -> float:
    """Parse '3e17', '2.5e18', '300P' or '1.2 EFLOP' into a positive float; raise a clear error otherwise."""
    raw = str(text).strip()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGTPEZY]?)(?:FLOPs?|flops?)?", raw)
    if not m:
        raise GaitforecastError(
            f"{what} {raw!r} is not a number; use e.g. 3e17, 2.5e18 or 300P (suffixes K M G T P E Z Y)"
        )
    value = float(m.group(1)) * _SUFFIX.get(m.group(2), 1.0)
    if not math.isfinite(value) or value <= 0:
        raise GaitforecastError(f"{what} must be a positive number, got {raw!r}")
    return value

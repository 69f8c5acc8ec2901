"""Shared pieces of the command line: the Typer app, stderr console, JSON output, number parsing."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

import typer
from rich.console import Console
from rich.text import Text

from gaitforecast.errors import GaitforecastError
from gaitforecast.units import parse_amount  # noqa: F401  (re-exported for the commands)

app = typer.Typer(
    name="gaitforecast",
    help="Train small gait models, fit scaling laws with honest uncertainty, forecast large runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Human text and progress go to stderr; stdout carries only --json documents. Markup is off: metric, column,
# arch and path names are the user's text, and "[/x]" in one must print as it is, not raise (styles are given as
# rich Text styles instead, see labelled()).
console = Console(stderr=True, markup=False)


def table_console() -> Console:
    """The stderr console for wide tables: piped or redirected stderr has no terminal width to respect, so the
    columns are not squeezed into 80."""
    return console if console.is_terminal else Console(stderr=True, width=200, markup=False)


def labelled(label: str, style: str, text: str) -> Text:
    """"label: text" with the label styled and the text (the user's names) taken literally."""
    return Text.assemble((label, style), " ", str(text))


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


def emit_json_list(items: Iterable[Any]) -> None:
    """Write one JSON list to stdout an item at a time, the same text emit_json(list(items)) writes: memory stays
    that of one item however many there are."""
    opened = False
    for item in items:
        text = json.dumps(_jsonable(item), indent=2, default=str).replace("\n", "\n  ")
        sys.stdout.write(("[\n  " if not opened else ",\n  ") + text)
        opened = True
    sys.stdout.write("\n]\n" if opened else "[]\n")
    sys.stdout.flush()


@contextlib.contextmanager
def stops_cleanly(stopped: str) -> Iterator[None]:
    """A sweep's block: SIGTERM (`kill`) stops it as cleanly as Ctrl-C; either prints "stopped: <stopped>" and
    exits 130 without a traceback."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    except KeyboardInterrupt:
        console.print(labelled("stopped:", "yellow", stopped), highlight=False)
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)

"""Parsing of human-written amounts such as FLOP budgets ('3e17', '300P'); shared by the CLI and the dashboard."""

from __future__ import annotations

import math
import re

from gaitforecast.errors import GaitforecastError

_SUFFIX = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24}


def parse_amount(text: str, what: str = "budget") -> float:
    """Parse '3e17', '2.5e18', '300P' or '1.2 EFLOP' into a positive float; raise a clear error otherwise."""
    raw = str(text).strip()
    m = re.fullmatch(r"([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGTPEZY]?)(?:FLOPs?|flops?)?", raw)
    if not m:
        raise GaitforecastError(
            f"{what} {raw!r} is not a number; use e.g. 3e17, 2.5e18 or 300P (suffixes K M G T P E Z Y)"
        )
    value = float(m.group(1)) * _SUFFIX.get(m.group(2), 1.0)
    if not math.isfinite(value) or value <= 0:
        raise GaitforecastError(f"{what} must be a positive number, got {raw!r}")
    return value

"""Reading the stored muP coordinate check into a table the muP page can plot.

The artifact payload is what `gaitforecast mup-check --store` records: the coord_check DataFrame as records
(optionally wrapped in a dict with metadata such as ``arch``). Any of those shapes is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

INDEX_COLUMNS = ("width", "step", "seed", "parametrization", "layer", "module", "arch", "name")
_ROW_KEYS = ("rows", "records", "table", "data", "coord_check", "results")


@dataclass
class Check:
    """One stored coordinate check: its table and a label for the picker."""

    table: pd.DataFrame
    label: str


def to_check(artifact) -> Check | None:
    """A :class:`Check` from one stored artifact (dict with a payload, or the payload itself); None if unusable."""
    payload = artifact.get("payload", artifact) if isinstance(artifact, dict) else artifact
    meta = {}
    rows = payload
    if isinstance(payload, dict):
        for key in _ROW_KEYS:
            if key in payload:
                rows = payload[key]
                meta = {k: v for k, v in payload.items() if k != key and not isinstance(v, (list, dict))}
                break
    try:
        table = pd.DataFrame(rows)
    except (ValueError, TypeError):
        return None
    if table.empty or "width" not in table.columns:
        return None
    if "layer" not in table.columns and "module" in table.columns:
        table = table.rename(columns={"module": "layer"})
    when = artifact.get("created_at") if isinstance(artifact, dict) else None
    arch = meta.get("arch") or (table["arch"].iloc[0] if "arch" in table else None)
    widths = ", ".join(str(int(w)) for w in sorted(table["width"].unique()))
    when = str(when)[:16].replace("T", " ") if when else None
    label = " · ".join(str(p) for p in (arch, when, f"widths {widths}") if p)
    return Check(table=table, label=label)


def value_columns(table: pd.DataFrame) -> list[str]:
    """Numeric activation statistics in the table (everything numeric that is not an index column)."""
    return [c for c in table.columns if c not in INDEX_COLUMNS and pd.api.types.is_numeric_dtype(table[c])]


def width_slopes(table: pd.DataFrame, value: str) -> pd.DataFrame:
    """Per parametrisation, the largest |slope| of log(value) against log(width) over layers and steps.

    Near 0 means activations do not grow with width (muP working); SP typically shows slopes near 0.5-1.
    """
    keys = [c for c in ("parametrization", "layer", "step") if c in table.columns]
    d = table[(table[value] > 0) & (table["width"] > 0)]
    out: dict[str, float] = {}
    groups = d.groupby(keys) if keys else [((), d)]
    for key, g in groups:
        if g["width"].nunique() < 2:
            continue
        slope = np.polyfit(np.log(g["width"].astype(float)), np.log(g[value].astype(float)), 1)[0]
        name = key[0] if keys and keys[0] == "parametrization" else "all"
        name = name if isinstance(name, str) else str(name)
        out[name] = max(out.get(name, 0.0), abs(float(slope)))
    return pd.DataFrame({"parametrization": list(out), "max_abs_slope": list(out.values())})

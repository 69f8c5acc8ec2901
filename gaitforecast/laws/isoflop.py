"""IsoFLOP profiles (Chinchilla Approach 2): at each compute budget, the model size that minimised the metric.

Use it as a cross-check of the parametric allocation when the store holds iso-compute groups (several model
sizes trained at about the same FLOPs). Known bias: the profile is not a parabola in log N when alpha != beta,
so the vertex is off even on noise-free data (Open-Athena 2026: D* +13 % on the Chinchilla surface for a narrow
grid extrapolated far); prefer the parametric fit for decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gaitforecast.laws.data import LawData

BIAS_NOTE = (
    "Approach 2 is biased: the IsoFLOP profile is not a parabola in log N when alpha != beta, so vertices drift "
    "(Open-Athena 2026: D* off by +6 to +46 % when extrapolated far); treat it as a cross-check of the law"
)


@dataclass(frozen=True)
class IsoFlopResult:
    """Per-budget optima and the power law N_opt = k * C^a fitted through them."""

    budgets: pd.DataFrame = field(repr=False)
    exponent: float | None
    coefficient: float | None
    note: str = BIAS_NOTE

    def to_dict(self) -> dict:
        return {"exponent": self.exponent, "coefficient": self.coefficient, "note": self.note,
                "budgets": self.budgets.to_dict(orient="records")}


def iso_groups(log_flops: np.ndarray, tolerance_decades: float = 0.1) -> np.ndarray:
    """Group label per run: runs whose FLOPs lie within ``tolerance_decades`` of a group's first run share it."""
    order = np.argsort(log_flops)
    labels = np.empty(len(log_flops), dtype=int)
    start, label = None, -1
    for i in order:
        if start is None or log_flops[i] - start > tolerance_decades * np.log(10.0):
            start, label = log_flops[i], label + 1
        labels[i] = label
    return labels


def isoflop(data: LawData, min_sizes: int = 4, tolerance_decades: float = 0.1) -> IsoFlopResult | None:
    """Fit a parabola of log metric vs log N in each iso-compute group with >= ``min_sizes`` sizes.

    Returns None when fewer than two budgets give an interior minimum (no iso-compute groups to speak of).
    """
    if not {"params", "flops"} <= set(data.logx):
        return None
    ln_c, ln_n, ln_y = data.logx["flops"], data.logx["params"], data.logy
    labels = iso_groups(ln_c, tolerance_decades)
    rows = []
    for g in np.unique(labels):
        idx = labels == g
        if len(np.unique(np.round(ln_n[idx], 6))) < min_sizes:
            continue
        c2, c1, c0 = np.polyfit(ln_n[idx], ln_y[idx], 2)
        vertex = -c1 / (2 * c2) if c2 > 0 else np.nan
        inside = bool(c2 > 0 and ln_n[idx].min() <= vertex <= ln_n[idx].max())
        best = np.exp(c0 + c1 * vertex + c2 * vertex**2) if inside else np.nan
        rows.append({"flops": float(np.exp(ln_c[idx].mean())), "n_runs": int(idx.sum()),
                     "params_opt": float(np.exp(vertex)) if inside else None,
                     "metric_opt": float(data.to_metric_units(best)) if inside else None, "vertex_inside": inside})
    table = pd.DataFrame(rows, columns=["flops", "n_runs", "params_opt", "metric_opt", "vertex_inside"])
    good = table[table["vertex_inside"]] if len(table) else table
    if len(good) < 2:
        return None
    slope, intercept = np.polyfit(np.log(good["flops"].astype(float)), np.log(good["params_opt"].astype(float)), 1)
    return IsoFlopResult(budgets=table, exponent=float(slope), coefficient=float(np.exp(intercept)))

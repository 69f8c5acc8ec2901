"""The stored decisions of adaptive sweeps (artifact kind "adaptive_decision", written by sweep/adaptive.py) as the
tables the Sweep design page shows: one row per decision, one per chosen run, and the width-vs-compute points."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

DECISION_KIND = "adaptive_decision"  # sweep.adaptive.DECISION_KIND (not imported: the app stays light)


@st.cache_data(max_entries=8, show_spinner=False)
def load(path_key: str, signature: tuple) -> list[dict]:
    """Decision payloads of the store at ``path_key``, cached per store signature (a new decision re-reads)."""
    from gaitforecast.store import RunStore

    try:
        return [a["payload"] for a in RunStore(Path(path_key)).artifacts(DECISION_KIND)]
    except Exception:  # noqa: BLE001 - a store without decisions shows the page's hint instead
        return []


def sessions(payloads: list[dict]) -> dict[str, list[dict]]:
    """Decisions grouped by adaptive sweep (session), each in step order; the most recent session first."""
    by: dict[str, list[dict]] = {}
    for p in payloads:
        if isinstance(p, dict) and "session" in p and "step" in p:
            by.setdefault(str(p["session"]), []).append(p)
    for steps in by.values():
        steps.sort(key=lambda p: int(p["step"]))
    return dict(sorted(by.items(), key=lambda kv: -len(kv[1])))


def label(steps: list[dict]) -> str:
    """A session's name for the picker."""
    first = steps[0]
    return (f"{first.get('spec') or 'sweep'} · {first.get('arch', '')} · {first.get('metric', '')} at "
            f"{float(first.get('target_budget', 0)):.3g} FLOPs ({len(steps)} steps, {first['session']})")


def steps_table(steps: list[dict]) -> pd.DataFrame:
    """One row per decision: step, kind, runs, compute before / planned after, width before / expected / measured."""
    return pd.DataFrame([{
        "step": int(p["step"]), "kind": p.get("kind"), "runs": len(p.get("runs", [])),
        "spent_before": p.get("spent_before"), "spent_after": p.get("spent_after") or p.get("spent_planned"),
        "width_before": p.get("width_before"), "expected_width_after": p.get("expected_width_after"),
        "width_after": p.get("width_after"), "law": p.get("law"),
    } for p in steps])


def runs_table(steps: list[dict]) -> pd.DataFrame:
    """One row per chosen run: the step that chose it, the run, its size and cost, the width expected after it
    and why it was chosen."""
    rows = []
    for p in steps:
        for r in p.get("runs", []):
            rows.append({"step": int(p["step"]), "run": r.get("label"), "params": r.get("params"),
                         "samples": r.get("samples"), "flops": r.get("flops"),
                         "expected_width": r.get("expected_width"), "why": r.get("why"), "id": r.get("id")})
    return pd.DataFrame(rows)


def width_points(steps: list[dict]) -> pd.DataFrame:
    """Interval width against compute spent: ``measured`` (a refit's width at the compute spent then) and
    ``expected`` (what the design expected once a decision's runs are trained), columns compute, width, series,
    step."""
    rows = []
    for p in steps:
        if p.get("width_before") is not None:
            rows.append({"compute": p["spent_before"], "width": p["width_before"], "series": "measured",
                         "step": int(p["step"])})
        if p.get("expected_width_after") is not None:
            rows.append({"compute": p.get("spent_planned"), "width": p["expected_width_after"], "series": "expected",
                         "step": int(p["step"])})
    last = steps[-1] if steps else {}
    if last.get("width_after") is not None and last.get("spent_after") is not None:
        rows.append({"compute": last["spent_after"], "width": last["width_after"], "series": "measured",
                     "step": int(last["step"]) + 1})
    frame = pd.DataFrame(rows, columns=["compute", "width", "series", "step"])
    return frame[(frame["compute"] > 0) & (frame["width"] > 0)].reset_index(drop=True)

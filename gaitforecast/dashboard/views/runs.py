"""Runs: filterable table of every run in the store, learning curves, and one run in detail."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from gaitforecast.dashboard import charts, data, ui

TABLE_COLUMNS = ["id", "arch", "width", "seed", "params", "samples", "flops", "status", "source", "wall_time_s"]

st.title("Runs")
snap = ui.load_or_stop()
runs = snap.runs
metrics = data.metric_columns(runs, snap.metrics)


def _choices(col: str) -> list[str]:
    return sorted(runs[col].dropna().astype(str).unique()) if col in runs else []


c1, c2, c3 = st.columns(3)
archs = c1.multiselect("Architecture", _choices("arch"), key="runs_arch", placeholder="all")
statuses = c2.multiselect("Status", _choices("status"), key="runs_status", placeholder="all")
sources = c3.multiselect("Source", _choices("source"), key="runs_source", placeholder="all")

view = runs
for col, chosen in (("arch", archs), ("status", statuses), ("source", sources)):
    if chosen:
        view = view[view[col].astype(str).isin(chosen)]

m1, m2, m3, m4 = st.columns(4)
m1.metric("Runs shown", len(view))
m2.metric("Done", int((view["status"] == "done").sum()) if "status" in view else len(view))
m3.metric("Total compute (FLOPs)", ui.fmt(view["flops"].sum()) if "flops" in view and len(view) else "-")
m4.metric("Largest model (params)", ui.fmt(view["params"].max()) if "params" in view and len(view) else "-")

shown = [c for c in TABLE_COLUMNS if c in view.columns] + metrics
st.dataframe(
    view[shown], hide_index=True, width="stretch", key="runs_table",
    column_config={
        "params": st.column_config.NumberColumn("params", format="compact"),
        "samples": st.column_config.NumberColumn("samples", format="compact"),
        "flops": st.column_config.NumberColumn("FLOPs", format="scientific"),
        "wall_time_s": st.column_config.NumberColumn("wall s", format="%.1f"),
    },
)

st.subheader("Learning curves")
curves = snap.curves
if curves is None or curves.empty:
    why = ("imported runs carry only final values" if snap.imported_only
           else "no run in this store recorded a curve yet")
    st.info(f"No learning curves: {why}.")
else:
    curves = curves[curves["run_id"].isin(view["id"])]
    names = sorted(curves["name"].dropna().unique())
    if not names:
        st.info("No learning curves for the runs shown; widen the filters.")
    else:
        cc1, cc2 = st.columns(2)
        default_name = "loss" if "loss" in names else names[0]
        name = cc1.selectbox("Curve", names, index=names.index(default_name), key="curve_name")
        x_opts = [c for c in ("samples_seen", "flops", "step") if c in curves and (curves[c] > 0).any()]
        x = cc2.selectbox("x axis", x_opts, key="curve_x", format_func=lambda c: charts.AXIS_LABELS.get(c, c))
        sub = curves[curves["name"] == name].merge(
            view[[c for c in ("id", "arch", "width") if c in view]], left_on="run_id", right_on="id", how="left")
        log_value = bool((sub["value"] > 0).all()) and not name.split(".")[-1].startswith(("rank", "mAP", "mINP"))
        blank = [None] * len(sub)
        sub["label"] = [charts.run_label(r, a, w) for r, a, w in zip(
            sub["run_id"], sub["arch"] if "arch" in sub else blank, sub["width"] if "width" in sub else blank)]
        st.altair_chart(charts.learning_curves(sub, x, name, log_value), width="stretch")

st.subheader("Run detail")
if view.empty:
    st.info("No runs match the filters.")
else:
    labels = {
        rid: f"{rid} · {arch} · {ui.fmt(p)} params · {ui.fmt(s)} samples"
        for rid, arch, p, s in zip(view["id"], view.get("arch", [""] * len(view)),
                                   view.get("params", [None] * len(view)), view.get("samples", [None] * len(view)))
    }
    rid = st.selectbox("Run", list(labels), format_func=labels.get, key="run_detail")
    row = view[view["id"] == rid].iloc[0]
    d1, d2 = st.columns(2)
    with d1:
        st.markdown("**Fields**")
        fields = {k: row[k] for k in row.index if k not in metrics and k != "config" and pd.notna(row[k])}
        st.dataframe(pd.DataFrame({"field": list(fields), "value": [str(v) for v in fields.values()]}),
                     hide_index=True, width="stretch", key="run_fields")
    with d2:
        st.markdown("**Final metrics**")
        vals = {m: row[m] for m in metrics if pd.notna(row[m])}
        st.dataframe(pd.DataFrame({"metric": list(vals), "value": list(vals.values())}),
                     hide_index=True, width="stretch", key="run_metrics")
        cfg = row.get("config")
        if isinstance(cfg, str) and cfg:
            try:
                st.json(json.loads(cfg), expanded=False)
            except ValueError:
                st.code(cfg)

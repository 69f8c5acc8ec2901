"""muP: the coordinate check stored by `gaitforecast mup-check --store ...` (artifact kind "mup_check")."""

from __future__ import annotations

import streamlit as st

from gaitforecast.dashboard import charts, mupview, ui

st.title("muP coordinate check")
st.caption("Activation sizes after a few training steps, across widths. Under muP the lines stay flat as width "
           "grows, so hyperparameters tuned on a small model carry over to large ones; under standard "
           "parametrisation (SP) they drift.")

path = ui.store_path()
snap = ui.load_or_stop()
checks = [c for c in (mupview.to_check(a) for a in snap.mup) if c is not None]
if not checks:
    st.info("No coordinate check in this store yet. Run it and record it with:")
    st.code(f"gaitforecast mup-check --store {path}", language="bash")
    st.stop()

check = checks[-1]
if len(checks) > 1:
    labels = [c.label for c in checks]
    pick = st.selectbox("Check", range(len(checks)), index=len(checks) - 1, format_func=lambda i: labels[i],
                        key="mup_pick")
    check = checks[pick]

table = check.table
values = mupview.value_columns(table)
if not values:
    st.warning("The stored coordinate check has no numeric activation column; re-run `gaitforecast mup-check`.")
    st.dataframe(table, hide_index=True, width="stretch")
    st.stop()

c1, c2 = st.columns(2)
value = c1.selectbox("Statistic", values, key="mup_value")
steps = sorted(table["step"].unique()) if "step" in table else []
if steps:
    step_pick = c2.multiselect("Steps", steps, default=steps, key="mup_steps")
    if step_pick:
        table = table[table["step"].isin(step_pick)]

slopes = mupview.width_slopes(table, value)
if len(slopes):
    cols = st.columns(len(slopes))
    for col, (_, row) in zip(cols, slopes.iterrows()):
        col.metric(f"{row['parametrization']}: max |slope| vs width", f"{row['max_abs_slope']:.2f}",
                   help="Largest |d log(activation) / d log(width)| over layers and steps; ~0 means width-stable.")

facet = "parametrization" if "parametrization" in table and table["parametrization"].nunique() > 1 else None
st.altair_chart(charts.coord_check(table, value, facet), width="content")
first = [c for c in ("parametrization", "layer", "width", "step") if c in table.columns]
st.dataframe(table[first + [c for c in table.columns if c not in first]], hide_index=True, width="stretch",
             key="mup_table")
st.caption(f"{check.label}. Re-run with `gaitforecast mup-check --store {path}` after changing the models.")

"""Sweep design: the decisions of `run-small --adaptive` (which run, why, the forecast's width before and after)."""

from __future__ import annotations

import streamlit as st

from gaitforecast.dashboard import charts, designview, ui

st.title("Sweep design")
st.caption("An adaptive sweep trains only the runs that narrow the forecast most per FLOP: fit, bootstrap, ask "
           "which untrained run of the grid the fitted laws disagree on in a way that matters at the target, train "
           "it, refit. Each decision is stored; here they are against the compute spent.")

path = ui.store_path()
snap = ui.load_or_stop()
found = designview.sessions(designview.load(snap.path_key or str(path), snap.signature))
if not found:
    st.info("No adaptive sweep in this store yet. Start one (it resumes where it stopped when run again):")
    st.code(f"gaitforecast run-small --adaptive --budget 1e13 --store {path}", language="bash")
    st.caption(f"Or ask which runs to train next without training them: `gaitforecast suggest --budget 1e13 --store "
               f"{path}`.")
    st.stop()

keys = list(found)
pick = keys[0]
if len(keys) > 1:
    pick = st.selectbox("Adaptive sweep", keys, format_func=lambda k: designview.label(found[k]), key="design_pick")
steps = found[pick]
first, last = steps[0], steps[-1]
table = designview.steps_table(steps)
points = designview.width_points(steps)
measured = points[points["series"] == "measured"]

c1, c2, c3, c4 = st.columns(4)
c1.metric("Decisions", f"{len(steps)}", help="Seed design included.")
c2.metric("Runs chosen", f"{int(table['runs'].sum())}")
spent = last.get("spent_after") or last.get("spent_before") or 0.0
c3.metric("Compute spent", ui.fmt(spent), help=f"of a budget of {ui.fmt(last.get('budget'))} FLOPs")
if len(measured):
    c4.metric("Interval width", ui.fmt(float(measured["width"].iloc[-1])),
              delta=ui.fmt(float(measured["width"].iloc[-1] - measured["width"].iloc[0])), delta_color="inverse",
              help=f"95 % width of the {first.get('metric')} forecast at {ui.fmt(first.get('target_budget'))} FLOPs "
                   "(at the law's compute-optimal split), first refit to latest.")

if len(points):
    st.altair_chart(charts.design_widths(points, f"95 % interval width ({first.get('metric')})"), width="stretch")
else:
    st.info("No refit yet: the seed design's runs are still training.")

st.subheader("Decisions")
st.dataframe(table, hide_index=True, width="stretch", key="design_steps")
st.subheader("Runs chosen, and why")
st.dataframe(designview.runs_table(steps), hide_index=True, width="stretch", key="design_runs")
st.caption(f"Target: {first.get('metric')} at {ui.fmt(first.get('target_budget'))} FLOPs ({first.get('objective')}); "
           f"law {last.get('law')}. Expected widths assume the law's form is right and treat the bootstrap ensemble "
           "as the belief (see `gaitforecast suggest --help` and the README).")

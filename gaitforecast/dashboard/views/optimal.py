"""Compute-optimal: IsoFLOP profiles where the store has them, the empirical and fitted frontier, and N_opt and
D_opt against compute with bootstrap bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from gaitforecast.dashboard import charts, fits, ui

st.title("Compute-optimal allocation")
snap = ui.load_or_stop()
ctx = ui.context(snap)
runs = fits.runs_for(ctx.path, ctx.sig, ctx.arch)
target = fits.fitted_target(ctx.metric, ctx.law, fits.runs_for(ctx.path, ctx.sig, None))
y_title = fits.target_title(ctx.metric, target)

# ---- IsoFLOP profiles (Chinchilla Approach 2)
st.subheader("IsoFLOP profiles")
iso, iso_points = fits.isoflop_result(ctx.path, ctx.sig, ctx.metric, ctx.arch)
if iso is None:
    st.info("No IsoFLOP groups: this needs at least two compute budgets, each trained at four or more model sizes "
            "(runs within 0.1 decade of FLOPs count as one budget). The parametric fit below still applies.")
else:
    table = iso.budgets.copy()
    minima = fits.iso_minima(iso, target)
    grouped = iso_points[iso_points["group"].isin(
        [g for g, n in iso_points["group"].value_counts().items() if n >= 4])]
    st.altair_chart(charts.isoflop(grouped, y_title, minima[["budget", "params", "y"]]), width="stretch")
    c1, c2 = st.columns(2)
    c1.metric("IsoFLOP groups with a minimum", f"{int(table['vertex_inside'].sum())} of {len(table)}")
    c2.metric("N_opt ∝ C^a (IsoFLOP)", f"a = {iso.exponent:.3f}")
    st.caption(iso.note)
    st.dataframe(table, hide_index=True, width="stretch", key="iso_table",
                 column_config={"flops": st.column_config.NumberColumn("FLOPs", format="scientific"),
                                "params_opt": st.column_config.NumberColumn("N_opt", format="compact")})

# ---- frontier: runs, empirical envelope, law
st.subheader("Frontier")
fit = fits.fitted(*ctx.key)
points = fits.fit_points(fit.value, runs) if fit.ok else pd.DataFrame()
allocates = fit.ok and set(fit.value.law.form.inputs) == {"params", "samples"}
front = fits.frontier(*ctx.key) if allocates else None
curve = fits.frontier_curve(front.value, target) if front is not None and front.ok else None
if not fit.ok:
    st.error(f"Cannot fit law `{ctx.law}` to `{ctx.metric}`: {fit.error}")
elif "flops" in points.columns:
    points["on_frontier"] = fits.empirical_frontier(points)
    st.altair_chart(charts.frontier(points, y_title, color="arch", curve=curve), width="stretch")
    st.caption(f"Black steps: the empirical frontier ({int(points['on_frontier'].sum())} runs that no cheaper run "
               "beats). Dashed line and band: the law at the compute-optimal split, with its 95% bootstrap interval.")

# ---- N_opt, D_opt vs compute
st.subheader("Optimal model size and data vs compute")
if not fit.ok:
    st.stop()
if not allocates:
    ui.not_applicable(f"Law `{ctx.law}` does not split compute into model size and data; choose `chinchilla` "
                      "(E + A/N^alpha + B/D^beta) in the sidebar to get N_opt and D_opt.")
if front is None or not front.ok:
    st.error(f"No allocation: {front.error if front is not None else 'the law cannot allocate'}")
    st.stop()

t = front.value
alloc = fits.allocation_lines(t)
observed = fits.observed_optima(minima) if iso is not None else None
st.altair_chart(charts.banded_lines(alloc, "budget", "Parameters / samples", y_fmt="~s", points=observed),
                width="stretch")

# Slopes only over the budgets whose optimum is a recommendation (inside the family's sizes, identified): an
# optimum pinned at the edge of the searched sizes bends the slope and contradicts the closed form.
ok = t["recommended"].astype(bool).to_numpy() if "recommended" in t else np.ones(len(t), bool)
law = fit.value.law
c1, c2, c3 = st.columns(3)
if ok.sum() >= 2:
    ln_c = np.log(t["budget_flops"].astype(float).to_numpy()[ok])
    slope_n = float(np.polyfit(ln_c, np.log(t["params_opt"].astype(float).to_numpy()[ok]), 1)[0])
    slope_d = float(np.polyfit(ln_c, np.log(t["samples_opt"].astype(float).to_numpy()[ok]), 1)[0])
    span = f"{ui.fmt(np.exp(ln_c.min()))} to {ui.fmt(np.exp(ln_c.max()))} FLOPs"
    c1.metric("N_opt ∝ C^a", f"a = {slope_n:.3f}", help=f"Slope of log N_opt vs log C over {span}.")
    c2.metric("D_opt ∝ C^b", f"b = {slope_d:.3f}", help=f"Slope of log D_opt vs log C over {span}; a + b = 1 "
              "when C = k·N·D, more than 1 when the cost per sample grows slower than N (attention).")
else:
    c1.metric("N_opt ∝ C^a", "-", help="Fewer than two budgets have an optimum inside the family's sizes.")
if (~ok).any():
    st.warning(f"{int((~ok).sum())} of {len(t)} budgets have no recommended split (outside the family's sizes or "
               "not identified); they are left out of the slopes. " + str(t.loc[~ok, "why"].iloc[0]))
ratio = front.value["cost_model"].iloc[0] if "cost_model" in front.value else ""
if {"alpha", "beta"} <= set(law.params) and str(ratio).endswith("*N*D"):
    c3.metric("β / (α + β)", f"{law.params['beta'] / (law.params['alpha'] + law.params['beta']):.3f}",
              help="The N_opt exponent of the closed form, which holds when C = k·N·D (this cost model).")
elif {"alpha", "beta"} <= set(law.params):
    c3.metric("β / (α + β)", "n/a", help=f"The closed form assumes C = k·N·D; the cost model here is {ratio}, "
              "so the numeric search above is the answer and this ratio would contradict it.")
st.caption(f"Cost model: {t['cost_model'].iloc[0]}. Bands: 95% bootstrap intervals ({ctx.n_boot} resamples). "
           "Diamonds: IsoFLOP minima, where present.")

show = pd.DataFrame({
    "budget_flops": t["budget_flops"].astype(float), "params_opt": t["params_opt"].astype(float),
    "samples_opt": t["samples_opt"].astype(float), "samples_per_param": t["samples_per_param"].astype(float),
    "predicted": t["predicted"].astype(float),
})
st.dataframe(show, hide_index=True, width="stretch", key="alloc_table",
             column_config={"budget_flops": st.column_config.NumberColumn("FLOPs", format="scientific"),
                            "params_opt": st.column_config.NumberColumn("N_opt", format="compact"),
                            "samples_opt": st.column_config.NumberColumn("D_opt", format="compact"),
                            "samples_per_param": st.column_config.NumberColumn("D/N", format="%.3g"),
                            "predicted": st.column_config.NumberColumn(f"predicted {ctx.metric}", format="%.4g")})

"""Architectures: GaitPT vs GaitFormer (the two most-run architectures) at equal compute."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gaitforecast.dashboard import charts, fits, ui

st.title("Architectures at equal compute")
snap = ui.load_or_stop()
ctx = ui.context(snap)
archs = fits.architectures(snap.done)
if len(archs) < 2:
    only = archs[0] if archs else "none"
    ui.not_applicable(
        f"This page compares architectures, and the finished runs have only one (`{only}`"
        + (", an imported table" if snap.imported_only else "") + "). Train both families, e.g. "
        f"`gaitforecast run-small --profile default --store {snap.path}` (GaitPT and GaitFormer at matched sizes).")

law = fits.comparison_law(ctx.path, ctx.sig, ctx.metric, ctx.law)  # one form both architectures' runs carry
if law != ctx.law:
    st.caption(f"Law `{ctx.law}` needs more runs of one architecture than the store has; both are compared "
               f"with `{law}` (as `gaitforecast compare` does).")
out = fits.comparison(ctx.path, ctx.sig, ctx.metric, law, ctx.n_boot)
if not out.ok:
    st.error(f"Cannot compare architectures with law `{law}` on `{ctx.metric}`: {out.error}")
    st.stop()
cmp = out.value
a, b = cmp.arch_a, cmp.arch_b
better_word = "higher" if cmp.higher_is_better else "lower"
st.caption(f"Each architecture fitted separately with law `{cmp.law}` on `{cmp.metric}` ({better_word} is better); "
           f"compared at the compute-optimal configuration of each budget. Difference = {b} − {a}, 95% interval "
           f"from independent bootstraps ({ctx.n_boot} resamples each).")
if cmp.dominates:
    st.success(f"**{cmp.dominates}** is better at every compared budget (the 95% interval of the difference "
               "excludes zero everywhere).")
else:
    winners = sorted({w for w in cmp.rows["better"] if isinstance(w, str)})
    st.info("Neither architecture is better at every budget with 95% confidence"
            + (f" (better somewhere: {', '.join(winners)})." if winners else "."))

rows = cmp.rows.rename(columns={"budget_flops": "budget"})
mid = rows.iloc[len(rows) // 2]
c1, c2, c3 = st.columns(3)
c1.metric(f"{a} at {ui.fmt(mid['budget'])} FLOPs", f"{mid[a]:.4g}")
c2.metric(f"{b} at {ui.fmt(mid['budget'])} FLOPs", f"{mid[b]:.4g}")
c3.metric(f"{b} − {a}", f"{mid['diff']:+.3g}", help=f"95% interval [{mid['diff_lo']:.3g}, {mid['diff_hi']:.3g}]")

# ---- each architecture's compute-optimal curve with its band, and its runs
target = fits.fitted_target(ctx.metric, ctx.law, fits.runs_for(ctx.path, ctx.sig, None))
y_title = fits.target_title(ctx.metric, target)
curves, dots = [], []
for arch in (a, b):
    front = fits.frontier(ctx.path, ctx.sig, ctx.metric, ctx.law, ctx.n_boot, arch)
    fit = fits.fitted(ctx.path, ctx.sig, ctx.metric, ctx.law, ctx.n_boot, arch)
    if front.ok:
        curves.append(fits.series(fits.frontier_curve(front.value, target), arch))
    elif fit.ok and "flops" in fit.value.law.form.inputs:
        got = fits.law_curve(ctx.path, ctx.sig, ctx.metric, ctx.law, ctx.n_boot, arch, "flops")
        if got.ok:
            curves.append(fits.series(fits.band_frame(got.value, "flops", "flops", target), arch))
    if fit.ok:
        p = fits.fit_points(fit.value, fits.runs_for(ctx.path, ctx.sig, arch))
        if "flops" in p:
            dots.append(fits.series_points(p, arch))
if curves:
    st.altair_chart(charts.banded_lines(pd.concat(curves, ignore_index=True), "flops", y_title, series="arch",
                                        points=pd.concat(dots, ignore_index=True) if dots else None),
                    width="stretch")
    st.caption("Lines: each architecture's law at its compute-optimal split, bands 95%; dots: its runs.")

st.subheader(f"Difference {b} − {a} in {cmp.metric}")
st.altair_chart(charts.difference(rows, f"{b} − {a}"), width="stretch")
st.dataframe(rows, hide_index=True, width="stretch", key="compare_table",
             column_config={"budget": st.column_config.NumberColumn("FLOPs", format="scientific")})

"""Architectures: GaitPT vs GaitFormer (the two most-run architectures) at equal compute, and which scales better
with data (their Chinchilla exponents with intervals). The numbers are `gaitforecast compare`'s."""

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
# a form the page chose (not the sidebar's) is left to the use case's default choice, which falls back when it
# cannot be refitted on one family's runs, as `gaitforecast compare` does
out = fits.comparison(ctx.path, ctx.sig, ctx.metric, law if law == ctx.law else fits.DEFAULT_LAW, ctx.n_boot)
if not out.ok and law == ctx.law:  # the sidebar's form cannot be refitted on one family: the default choice
    failed = out.error
    out = fits.comparison(ctx.path, ctx.sig, ctx.metric, fits.DEFAULT_LAW, ctx.n_boot)
    if out.ok and out.value.law != law:
        st.warning(f"Law `{law}` could not be compared: {failed}")
if not out.ok:
    st.error(f"Cannot compare architectures with law `{law}` on `{ctx.metric}`: {out.error}")
    st.stop()
cmp = out.value
law = cmp.law
if law != ctx.law:
    st.caption(f"Law `{ctx.law}` cannot be fitted to both architectures' runs; both are compared with `{law}` "
               "(as `gaitforecast compare` does).")
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

# ---- each architecture's law (the comparison's form) at its compute-optimal split with its band, and its runs
target = fits.fitted_target(ctx.metric, law, fits.runs_for(ctx.path, ctx.sig, None))
y_title = fits.target_title(ctx.metric, target)
curves, dots, n_runs = [], [], {}
for arch in (a, b):
    front = fits.frontier(ctx.path, ctx.sig, ctx.metric, law, ctx.n_boot, arch)
    fit = fits.fitted(ctx.path, ctx.sig, ctx.metric, law, ctx.n_boot, arch)
    if front.ok:
        curves.append(fits.series(fits.frontier_curve(front.value, target), arch))
    elif fit.ok and "flops" in fit.value.law.form.inputs:
        got = fits.law_curve(ctx.path, ctx.sig, ctx.metric, law, ctx.n_boot, arch, "flops")
        if got.ok:
            curves.append(fits.series(fits.band_frame(got.value, "flops", "flops", target), arch))
    if fit.ok:
        n_runs[arch] = fit.value.law.n_runs
        p = fits.fit_points(fit.value, fits.runs_for(ctx.path, ctx.sig, arch))
        if "flops" in p:
            dots.append(fits.series_points(p, arch))
if curves:
    st.altair_chart(charts.banded_lines(pd.concat(curves, ignore_index=True), "flops", y_title, series="arch",
                                        points=pd.concat(dots, ignore_index=True) if dots else None),
                    width="stretch")
    st.caption(f"Lines: each architecture's `{law}` law at its compute-optimal split, bands 95%; dots: its runs ("
               + ", ".join(f"{arch} {n}" for arch, n in n_runs.items()) + ").")

st.subheader(f"Difference {b} − {a} in {cmp.metric}")
st.altair_chart(charts.difference(rows, f"{b} − {a}"), width="stretch")
st.dataframe(rows, hide_index=True, width="stretch", key="compare_table",
             column_config={"budget": st.column_config.NumberColumn("FLOPs", format="scientific")})

# ---- which family scales better with data: the exponents and beta(A) - beta(B), as `gaitforecast compare`
st.subheader("Which family scales better with data")
exps = cmp.exponents
if exps is None:
    st.info(cmp.exponents_note)
else:
    if exps.excludes_zero:
        st.success(exps.verdict())
    else:
        st.info(exps.verdict())
    for note in exps.notes:
        st.warning(note)
    table = fits.exponent_rows(exps.exponents)
    st.altair_chart(charts.exponents(table), width="stretch")
    shown = table.assign(runs=table["arch"].map(n_runs)).rename(columns={"lo": "95% low", "hi": "95% high"})
    st.dataframe(shown, hide_index=True, width="stretch", key="exponents_table")
    if exps.beta_difference is not None:
        d, lo, hi = exps.beta_difference
        st.metric(f"β({a}) − β({b}), 95% interval", f"{d:+.3g} [{lo:+.3g}, {hi:+.3g}]",
                  help=f"From {ctx.n_boot} independent run-level resamples of each family, paired draw by draw.")
    st.caption("alpha: the parameter exponent, beta: the data exponent of E + A/N^alpha + B/D^beta; the larger "
               "exponent falls faster. Points: the fit, bars: 95% bootstrap intervals.")

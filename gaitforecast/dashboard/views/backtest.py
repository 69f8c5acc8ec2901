"""Backtest: fit on the runs below a compute cutoff, predict the larger ones; predicted vs actual with intervals.
The candidate laws ranked by held-out error, for an accuracy with the two-step form through a loss beside them."""

from __future__ import annotations

import numpy as np
import streamlit as st

from gaitforecast.dashboard import charts, fits, ui, viaview
from gaitforecast.laws import default_cutoff

st.title("Backtest")
snap = ui.load_or_stop()
ctx = ui.context(snap)
runs = fits.runs_for(ctx.path, ctx.sig, ctx.arch)
if "flops" not in runs or not (runs["flops"] > 0).all():
    ui.not_applicable("A backtest orders runs by training compute; these runs lack FLOPs.")
flops = np.sort(runs["flops"].astype(float).unique())
if len(flops) < 3:
    ui.not_applicable("A backtest needs runs at three or more compute levels.")

st.caption("Rollout validation: fit the law on every run at or below the cutoff, predict every larger run, and "
           "compare. This, not the in-sample fit, says whether an extrapolation can be trusted.")
default = default_cutoff(np.log(flops))  # the CLI's default, so both faces report the same backtest
options = sorted({float(v) for v in flops[:-1]} | {float(default)})  # compute levels: a cutoff at a run includes it
start = float(default)
cutoff = float(st.select_slider("Fit on runs with FLOPs up to", options=options, value=start, format_func=ui.fmt,
                                key="cutoff"))
out = fits.backtest(*ctx.key, cutoff)
if not out.ok:
    st.error(f"Backtest of `{ctx.law}` on `{ctx.metric}` failed at this cutoff: {out.error}")
    st.stop()
bt = out.value

c = st.columns(6)
c[0].metric("Runs fitted", bt.n_fit)
c[1].metric("Runs predicted", bt.n_test)
c[2].metric("Median |rel. error|", f"{bt.median_rel_error:.2%}")
c[3].metric("Mean |rel. error|", f"{bt.mean_rel_error:.2%}")
c[4].metric("Bias", f"{bt.bias:+.2%}", help="Mean signed relative error: positive = the law over-predicts.")
c[5].metric("Inside 95% PI", f"{bt.coverage:.0%}", help="Share of actual values inside their prediction interval.")
if not bt.converged:
    st.warning("The fit below the cutoff did not converge cleanly; read the errors with care.")

st.altair_chart(charts.predicted_vs_actual(fits.backtest_rows(bt.rows), ctx.metric), width="stretch")
st.caption("Each dot is a held-out run; bars are 95% prediction intervals; the dashed line is perfect prediction.")
st.dataframe(bt.rows, hide_index=True, width="stretch", key="backtest_rows",
             column_config={"flops": st.column_config.NumberColumn("FLOPs", format="scientific"),
                            "rel_error": st.column_config.NumberColumn("rel. error", format="percent")})

st.subheader("Which law extrapolates best?")
losses = fits.via_options(runs, ctx.metric, snap.metrics)
via = (st.selectbox("Two-step form via", ["none", *losses], key="via_backtest",
                    help=f"Also backtest {ctx.metric} forecast in two steps: a law for this loss, then a sigmoid link "
                         "to the accuracy (as `gaitforecast backtest --via`).")
       if losses else "none")
two = viaview.two_step_backtest(ctx, via, cutoff) if via != "none" else None
if st.toggle("Backtest every candidate law at this cutoff", key="rank_laws"):
    ranked = fits.ranked_laws(ctx.path, ctx.sig, ctx.metric, ctx.arch, cutoff)
    if ranked.ok:
        table = ranked.value if two is None else viaview.with_two_step(ranked.value, two)
        st.dataframe(table, hide_index=True, width="stretch", key="ranked_laws")
        ok = table[table["error"].isna()]
        if len(ok):
            st.success(f"Lowest held-out error: **{ok.iloc[0]['law']}** (median {ok.iloc[0]['median_rel_error']:.2%}).")
    else:
        st.error(ranked.error)

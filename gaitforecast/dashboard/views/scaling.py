"""Scaling laws: the metric against data, params and compute on log-log axes, the fitted law with its bootstrap
band, the parameters with intervals, diagnostics and residuals."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gaitforecast.dashboard import charts, fits, ui

st.title("Scaling laws")
snap = ui.load_or_stop()
ctx = ui.context(snap)
boot = ui.fitted_or_stop(ctx)
law = boot.law
target = law.data.target
summary = boot.to_dict()
runs = fits.runs_for(ctx.path, ctx.sig, ctx.arch)
points = fits.fit_points(boot, runs)
y_title = fits.target_title(ctx.metric, target)

st.caption(f"Law `{law.law}`: {law.form.description}; fitted to {law.fitted_as} of {law.n_runs} runs"
           + (f" ({ctx.arch})" if ctx.arch else "") + f", {boot.n_resamples} run-level bootstrap resamples.")

c1, c2, c3, c4 = st.columns(4)
c1.metric("Runs fitted", law.n_runs)
c2.metric("Fit status", "converged" if law.converged else "NOT converged", help=law.status)
c3.metric("Residual sd (log)", f"{law.residual_sd:.3g}", help="Robust sd of log(observed / fitted).")
diag = fits.diagnostics(boot)
span = diag.get("compute_span_decades")
c4.metric("Compute span", f"{span:.2f} decades" if span is not None else "-")
for warning in diag["warnings"]:
    st.warning(warning)

ci, se = summary["ci"], summary["se"]
params_table = pd.DataFrame({
    "parameter": list(law.params),
    "value": [law.params[k] for k in law.params],
    "ci_lo": [ci[k][0] for k in law.params],
    "ci_hi": [ci[k][1] for k in law.params],
    "se": [se[k] for k in law.params],
})
st.subheader("Parameters (95% bootstrap intervals)")
st.dataframe(params_table, hide_index=True, width="content", key="law_params",
             column_config={c: st.column_config.NumberColumn(c, format="%.4g")
                            for c in ("value", "ci_lo", "ci_hi", "se")})
noise = diag.get("seed_noise") or {}
if noise.get("sd") is not None:
    st.caption(f"Seed noise from {noise['replicated_configs']} replicated configuration(s): sd {noise['sd']:.3g} "
               f"({ctx.metric} units), {noise['sd_log']:.3g} in log units.")


def _held(axis: str) -> float:
    """Value the other axis of a two-axis law is held at (a slider over the runs' range)."""
    options = fits.held_options(points[axis])
    return float(st.select_slider(f"Hold {axis} at", options=options, value=options[len(options) // 2],
                                  format_func=ui.fmt, key=f"hold_{axis}"))


def _axis_chart(axis: str) -> None:
    if axis not in points.columns or not (points[axis] > 0).any():
        st.info(f"The runs have no {axis}.")
        return
    inputs = law.form.inputs
    curve = None
    if axis == "flops" and set(inputs) == {"params", "samples"}:
        table = fits.frontier(*ctx.key)
        if table.ok:
            curve = fits.frontier_curve(table.value, target)
            st.caption("Line: the law at the compute-optimal split of each budget; band: 95% bootstrap interval.")
        else:
            st.caption(f"No compute-optimal curve: {table.error}")
    elif axis in inputs:
        fixed: tuple = ()
        if len(inputs) == 2:
            other = next(a for a in inputs if a != axis)
            fixed = ((other, _held(other)),)
            st.caption(f"Line: the law with {other} held at {ui.fmt(dict(fixed)[other])}; band: 95% bootstrap "
                       "interval of the law's mean. Dots: every run (colour = architecture).")
        out = fits.law_curve(*ctx.key, axis, fixed)
        if out.ok:
            curve = fits.band_frame(out.value, axis, axis, target)
        else:
            st.caption(f"No curve: {out.error}")
    else:
        st.caption(f"Law `{law.law}` is not a function of {axis}; only the runs are shown. Pick `chinchilla` or "
                   f"`power-{'data' if axis == 'samples' else axis}` in the sidebar to draw a law here.")
    if curve is None:
        curve = pd.DataFrame({axis: [], "pred": [], "lo": [], "hi": []})
    st.altair_chart(charts.law_fit(points, curve, axis, y_title, color="arch"), width="stretch")


tabs = st.tabs(["vs compute", "vs params", "vs data"])
for tab, axis in zip(tabs, ("flops", "params", "samples")):
    with tab:
        _axis_chart(axis)

st.subheader("Residuals")
res_axis = "flops" if "flops" in points.columns else law.form.inputs[0]
st.altair_chart(charts.residuals(points, res_axis, color="arch"), width="stretch")
st.caption("log(observed / fitted) per run; a trend with compute means the form misses curvature "
           "(check the Backtest page before trusting an extrapolation).")

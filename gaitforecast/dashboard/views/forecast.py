"""Forecast: enter a compute budget, get the recommended model size and samples and the predicted metric with
intervals; download the answer as JSON or CSV. Also predicts one given configuration, and for an accuracy the
two-step forecast through a loss (`predict --via`)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from gaitforecast.units import parse_amount
from gaitforecast.dashboard import charts, fits, ui
from gaitforecast.dashboard import viaview
from gaitforecast.errors import GaitforecastError

st.title("Forecast")
snap = ui.load_or_stop()
ctx = ui.context(snap)
boot = ui.fitted_or_stop(ctx)
law = boot.law
runs = fits.runs_for(ctx.path, ctx.sig, ctx.arch)
largest = float(runs["flops"].max()) if "flops" in runs else float("nan")
default_budget = f"{fits.default_budget(runs):.0e}".replace("e+", "e")

st.caption(f"Law `{law.law}` fitted to {law.n_runs} runs" + (f" ({ctx.arch})" if ctx.arch else "")
           + f"; the largest used {ui.fmt(largest)} FLOPs. Intervals: 95% from {boot.n_resamples} bootstrap resamples.")
losses = fits.via_options(runs, ctx.metric, snap.metrics)
c_budget, c_via = st.columns([2, 1]) if losses else (st, None)
text = c_budget.text_input("Compute budget (FLOPs)", value=default_budget, key="budget",
                           help="A number such as 3e17, 2.5e18, or with a suffix: 300P, 1.2E (K M G T P E Z Y).")
via = (c_via.selectbox("Forecast via", ["none", *losses], key="via",
                       help=f"Two-step forecast of {ctx.metric}: a law for this loss, then a fitted sigmoid link from "
                            "the loss to the accuracy, bootstrapped through both (as `gaitforecast predict --via`).")
       if c_via is not None else "none")
try:
    budget = parse_amount(text)
except GaitforecastError as exc:
    st.error(str(exc))
    st.stop()

out = fits.allocation(*ctx.key, budget)
if not out.ok:
    st.error(f"No forecast at {text}: {out.error}")
    st.stop()
alloc = out.value
metric_label = f"Predicted {ctx.metric}"


def _ci(key: str) -> str:
    value = alloc.get(key)
    return f"95% CI {ui.fmt_interval(*value)}" if value else "no interval"


cols = st.columns(4)
if alloc["params_opt"] is not None:
    word = "Recommended" if alloc.get("recommended", True) else "Law's optimum (not recommended):"
    cols[0].metric(f"{word} parameters", ui.fmt(alloc["params_opt"]), help=_ci("params_opt_ci"))
    cols[1].metric(f"{word} samples", ui.fmt(alloc["samples_opt"]), help=_ci("samples_opt_ci"))
    cols[2].metric("Samples per parameter", ui.fmt(alloc["samples_per_param"]), help=_ci("samples_per_param_ci"))
else:
    cols[0].metric("Recommended parameters", "-", help="this law is in compute only")
cols[3].metric(metric_label, f"{alloc['predicted']:.4g}", help=_ci("predicted_ci"))

rows = [("budget (FLOPs)", budget, None)]
if alloc["params_opt"] is not None:
    rows += [("parameters N_opt", alloc["params_opt"], alloc["params_opt_ci"]),
             ("samples D_opt", alloc["samples_opt"], alloc["samples_opt_ci"]),
             ("samples per parameter", alloc["samples_per_param"], alloc["samples_per_param_ci"])]
rows += [(f"{ctx.metric} (confidence interval)", alloc["predicted"], alloc["predicted_ci"]),
         (f"{ctx.metric} (prediction interval, one run)", alloc["predicted"], alloc["predicted_pi"])]
st.table(ui.summary_table(rows))
shown = set(fits.fitted_case(*ctx.key).value.notes)  # already said above the page
for note in alloc.get("warnings") or ():
    if note not in shown:
        st.warning(note)
if alloc["params_opt"] is None:
    st.info(f"Law `{ctx.law}` predicts the metric from compute alone; choose `chinchilla` in the sidebar to get the "
            "split into model size and samples.")

record = {"store": str(snap.path), "metric": ctx.metric, "law": ctx.law, "arch": ctx.arch,
          "n_runs": law.n_runs, "n_resamples": boot.n_resamples, "params": law.params, **alloc}
flat = {k: v for k, v in record.items() if not isinstance(v, (list, tuple, dict))}
for k, v in record.items():
    if isinstance(v, (list, tuple)) and len(v) == 2 and k != "warnings":
        flat[f"{k}_lo"], flat[f"{k}_hi"] = v
d1, d2 = st.columns(2)
d1.download_button("Download JSON", json.dumps(record, indent=2, default=str), file_name="forecast.json",
                   mime="application/json", key="dl_json")
d2.download_button("Download CSV", pd.DataFrame([flat]).to_csv(index=False), file_name="forecast.csv",
                   mime="text/csv", key="dl_csv")

if via != "none":
    viaview.two_step_forecast(ctx, via, budget, text, shown | set(alloc.get("warnings") or ()))

# ---- where the budget sits relative to the fitted runs
target = law.data.target
front = fits.frontier(*ctx.key) if set(law.form.inputs) == {"params", "samples"} else None
if front is not None and front.ok:
    curve = fits.frontier_curve(front.value, target)
elif "flops" in law.form.inputs:
    got = fits.law_curve(*ctx.key, "flops")
    curve = fits.band_frame(got.value, "flops", "flops", target) if got.ok else None
else:
    curve = None
if curve is not None:
    pts = fits.fit_points(boot, runs)
    predicted_target = float(fits.to_target(alloc["predicted"], target)[0])
    if curve["flops"].max() < budget:
        st.caption("The budget lies beyond the plotted law (which stops at 100x the largest run).")
    st.altair_chart(charts.forecast(curve, budget, predicted_target, fits.target_title(ctx.metric, target),
                                    pts if "flops" in pts else None), width="stretch")

with st.expander("Predict one configuration"):
    inputs = law.form.inputs
    given = {}
    cols = st.columns(len(inputs))
    for col, axis in zip(cols, inputs):
        default = float(runs[axis].max()) * 2 if axis in runs else 1.0
        raw = col.text_input(axis, value=f"{default:.3g}", key=f"one_{axis}")
        try:
            given[axis] = parse_amount(raw, what=axis)
        except GaitforecastError as exc:
            col.error(str(exc))
    if len(given) == len(inputs):
        one = boot.predict(**given).iloc[0]
        st.metric(metric_label, f"{one['predicted']:.4g}",
                  help=f"95% CI [{one['ci_lo']:.4g}, {one['ci_hi']:.4g}]; PI [{one['pi_lo']:.4g}, {one['pi_hi']:.4g}]")
        st.caption(f"95% confidence interval [{one['ci_lo']:.4g}, {one['ci_hi']:.4g}]; prediction interval for one "
                   f"run [{one['pi_lo']:.4g}, {one['pi_hi']:.4g}].")

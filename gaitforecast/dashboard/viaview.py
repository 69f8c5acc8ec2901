"""The two-step forecast on the Forecast and Backtest pages: compute -> a loss -> the accuracy through a fitted
sigmoid link, from the forecast use case's `forecast_via` and `backtest_via` (the functions behind `predict --via`
and `backtest --via`), so both faces show the same numbers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from gaitforecast.dashboard import fits, ui


def _law(ctx: ui.Context) -> str:
    return fits.via_law(*ctx.key)


def two_step_forecast(ctx: ui.Context, via: str, budget: float, text: str, shown: set[str] = frozenset()) -> None:
    """The two-step forecast at ``budget`` FLOPs, its intervals and the two fitted steps (notes in ``shown`` are
    already on the page)."""
    st.subheader(f"Two-step forecast: {ctx.metric} via {via}")
    got = fits.via_forecast(ctx.path, ctx.sig, ctx.metric, _law(ctx), ctx.n_boot, ctx.arch, via, budget)
    if not got.ok:
        st.error(f"No two-step forecast via `{via}` at {text}: {got.error}")
        return
    out = got.value
    st.caption(f"Step 1: the `{out['via_law']}` law for `{via}`; step 2: the sigmoid link {out['link_formula']} from "
               f"`{via}` to `{ctx.metric}`; one bootstrap ({ctx.n_boot} resamples of the {out['n_runs']} runs) goes "
               f"through both. The numbers of `gaitforecast predict --via {via} --budget {text}`.")
    cols = st.columns(4)
    if out.get("params_opt") is not None:
        cols[0].metric("Parameters (loss law's optimum)", ui.fmt(out["params_opt"]),
                       help=f"95% CI {ui.fmt_interval(*out['params_opt_ci'])}")
        cols[1].metric("Samples (loss law's optimum)", ui.fmt(out["samples_opt"]),
                       help=f"95% CI {ui.fmt_interval(*out['samples_opt_ci'])}")
    cols[2].metric(f"Predicted {via} (step 1)", f"{out['via_predicted']:.4g}")
    cols[3].metric(f"Predicted {ctx.metric} (two-step)", f"{out['predicted']:.4g}",
                   help=f"95% CI {ui.fmt_interval(*out['predicted_ci'])}")
    rows = [("budget (FLOPs)", out["budget_flops"], None)]
    if out.get("params_opt") is not None:
        rows += [("parameters N_opt", out["params_opt"], out["params_opt_ci"]),
                 ("samples D_opt", out["samples_opt"], out["samples_opt_ci"])]
    rows += [(f"{via} predicted (step 1)", out["via_predicted"], None),
             (f"{ctx.metric} (confidence interval)", out["predicted"], out["predicted_ci"]),
             (f"{ctx.metric} (prediction interval, one run)", out["predicted"], out["predicted_pi"])]
    st.table(ui.summary_table(rows))
    step1, step2 = st.columns(2)
    step1.markdown(f"**Step 1:** `{out['via_law']}` law for `{via}`")
    step1.table(pd.DataFrame({"parameter": list(out["via_params"]),
                              "value": [f"{v:.4g}" for v in out["via_params"].values()]}).set_index("parameter"))
    step2.markdown(f"**Step 2:** link from `{via}` to `{ctx.metric}`")
    link = ui.summary_table([(name, out["link"][name], out["link_ci"][name]) for name in "ckm"])
    step2.table(link.rename_axis("parameter"))
    for note in out.get("warnings") or ():
        if note not in shown:
            st.warning(note)
    st.download_button("Download two-step JSON", json.dumps(out, indent=2, default=str), key="dl_via_json",
                       file_name="forecast_via.json", mime="application/json")


def two_step_backtest(ctx: ui.Context, via: str, cutoff: float) -> dict[str, Any] | None:
    """The two-step forecast's rollout beside the direct law's at ``cutoff`` (None when it cannot be made)."""
    got = fits.via_backtest(ctx.path, ctx.sig, ctx.metric, _law(ctx), ctx.n_boot, ctx.arch, via, cutoff)
    if not got.ok:
        st.error(f"No two-step backtest via `{via}` at this cutoff: {got.error}")
        return None
    out, direct = got.value, got.value["direct"]
    table = pd.DataFrame([
        {"forecast": two_step_name(out), "median |error|": out["median_abs_error"],
         "median |rel. error|": out["median_rel_error"], "inside 95% PI": out["coverage"],
         "median PI width": out["median_interval_width"]},
        {"forecast": f"direct {direct['law']} law", "median |error|": direct["median_abs_error"],
         "median |rel. error|": direct["median_rel_error"], "inside 95% PI": direct["coverage"],
         "median PI width": direct["median_interval_width"]},
    ])
    st.dataframe(table, hide_index=True, width="stretch", key="via_backtest",
                 column_config={"median |rel. error|": st.column_config.NumberColumn(format="percent"),
                                "inside 95% PI": st.column_config.NumberColumn(format="percent")})
    st.caption(f"Both fitted on the {out['n_fit']} runs up to {ui.fmt(out['fit_below'])} FLOPs and scored on the "
               f"{out['n_test']} above, as `gaitforecast backtest --via {via}`; better here: **{out['winner']}**.")
    return out


def two_step_name(out: dict[str, Any]) -> str:
    return f"two-step via {out['via']} ({out['law']} + link)"


def with_two_step(ranking: pd.DataFrame, out: dict[str, Any]) -> pd.DataFrame:
    """The candidate laws' ranking with the two-step form's row, ordered again by held-out error."""
    row = {"law": two_step_name(out), "median_rel_error": out["median_rel_error"], "mean_rel_error": np.nan,
           "bias": np.nan, "coverage": out["coverage"], "converged": True, "error": None}
    both = pd.concat([ranking, pd.DataFrame([row])], ignore_index=True)
    return both.sort_values("median_rel_error", kind="stable", ignore_index=True)

"""Entry script of the gaitforecast dashboard: page frame, sidebar (store, metric, bootstrap size), navigation.

Run with ``gaitforecast dashboard --store PATH`` or ``streamlit run app/streamlit_app.py -- --store PATH``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent
try:
    import gaitforecast  # noqa: F401
except ImportError:  # run from a source checkout that is not pip-installed: use the checkout's package
    sys.path.insert(0, str(HERE.parents[1]))

from gaitforecast.dashboard import data, live, ui  # noqa: E402

PAGES = [
    st.Page(str(HERE / "views" / "runs.py"), title="Runs", icon=":material/table:", default=True),
    st.Page(str(HERE / "views" / "scaling.py"), title="Scaling laws", icon=":material/show_chart:"),
    st.Page(str(HERE / "views" / "optimal.py"), title="Compute-optimal", icon=":material/balance:"),
    st.Page(str(HERE / "views" / "forecast.py"), title="Forecast", icon=":material/query_stats:"),
    st.Page(str(HERE / "views" / "architectures.py"), title="Architectures", icon=":material/compare:"),
    st.Page(str(HERE / "views" / "backtest.py"), title="Backtest", icon=":material/history:"),
    st.Page(str(HERE / "views" / "design.py"), title="Sweep design", icon=":material/route:"),
    st.Page(str(HERE / "views" / "mup.py"), title="muP", icon=":material/tune:"),
]


def _sidebar() -> None:
    path = ui.store_path()
    st.sidebar.caption(f"Store: `{path}`")
    try:
        snap = data.snapshot(path)
    except data.StoreProblem:
        return  # the page explains what to run
    done = snap.done
    st.sidebar.caption(f"{len(snap.runs)} runs, {len(done)} done" + (" (imported)" if snap.imported_only else ""))
    metrics = data.metric_columns(done, snap.metrics)
    if metrics:
        if st.session_state.get("metric") not in metrics:
            st.session_state["metric"] = data.default_metric(metrics)
        st.sidebar.selectbox("Metric", metrics, key="metric", help="Final metric the laws are fitted to.")
        archs = ui.arch_options(snap)
        if len(archs) > 1:
            if st.session_state.get("arch") not in archs:
                st.session_state["arch"] = archs[0]
            st.sidebar.selectbox("Architecture", archs, key="arch",
                                 help="Laws are fitted per architecture; the Architectures page compares them.")
        arch = st.session_state.get("arch") if len(archs) > 1 else (archs[0] if archs else None)
        laws = ui.law_options(snap, st.session_state["metric"], arch)
        if laws:
            # the law follows the architecture: its default again whenever the architecture changes
            if st.session_state.get("law") not in laws or st.session_state.get("law_for_arch", arch) != arch:
                st.session_state["law"] = laws[0]
            st.session_state["law_for_arch"] = arch
            st.sidebar.selectbox("Law", laws, key="law",
                                 help="chinchilla: E + A/N^alpha + B/D^beta (allocates params vs samples); "
                                      "power-*: E + A x^-k along one axis; sigmoid-compute: bounded, for accuracy.")
    if "n_boot" not in st.session_state:
        st.session_state["n_boot"] = ui.DEFAULT_BOOTSTRAP
    st.sidebar.selectbox("Bootstrap resamples", ui.BOOTSTRAP_CHOICES, key="n_boot",
                         help="Run-level resamples for intervals (the CLI uses 1000).")
    if st.sidebar.button("Reload store"):
        st.cache_data.clear()


st.set_page_config(page_title="gaitforecast", page_icon=":material/directions_walk:", layout="wide")
with live.shown():  # the engine's progress (stages, resamples refitted, ETA) at the top while anything fits
    _sidebar()
    st.navigation(PAGES).run()

"""Helpers shared by the pages: load the store or explain what to run, the sidebar choices, number formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from gaitforecast.dashboard import data

from gaitforecast.forecast import DEFAULT_RESAMPLES

BOOTSTRAP_CHOICES = (100, 200, 500, 1000)
DEFAULT_BOOTSTRAP = DEFAULT_RESAMPLES  # the forecast use case's default, as the CLI


def store_path():
    """The store this app shows (see :func:`data.resolve_store_path`)."""
    return data.resolve_store_path()


def load_or_stop() -> data.Snapshot:
    """Snapshot of the store, or an explanation of what to run followed by ``st.stop()``."""
    path = store_path()
    try:
        snap = data.snapshot(path)
    except data.StoreProblem as problem:
        if problem.kind == "invalid":
            st.error(str(problem))
        else:
            st.info(str(problem))
            st.code(f"gaitforecast run-small --profile quick --store {path}", language="bash")
        st.stop()
    if snap.warning:
        st.warning(snap.warning)
    return snap


@dataclass(frozen=True)
class Context:
    """What a law page works on: the store state (cache key), metric, architecture, law and bootstrap size."""

    path: str
    sig: tuple
    metric: str
    arch: str | None
    law: str
    n_boot: int

    @property
    def key(self) -> tuple:
        """Arguments shared by the cached fit functions: (path, sig, metric, law, n_boot, arch)."""
        return (self.path, self.sig, self.metric, self.law, self.n_boot, self.arch)


def arch_options(snap: data.Snapshot) -> list[str]:
    """Architectures among the finished runs, the one with the most runs first (as the CLI's default)."""
    from gaitforecast.dashboard.fits import architectures

    return architectures(snap.done)


def law_options(snap: data.Snapshot, metric: str, arch: str | None) -> list[str]:
    """Laws that can be fitted here, the forecast use case's default choice first (as the CLI makes it)."""
    from gaitforecast.dashboard.fits import candidate_laws, default_law

    runs = snap.done if arch is None else snap.done[snap.done["arch"].astype(str) == arch]
    laws = candidate_laws(runs, metric)
    default = default_law(snap.path_key, snap.signature, metric, bootstrap_choice(), arch)
    return sorted(laws, key=lambda name: name != default)


def context(snap: data.Snapshot) -> Context:
    """The sidebar's choices for this store, or an explanation and ``st.stop()`` when nothing can be fitted."""
    if snap.done.empty:
        counts = snap.runs["status"].value_counts().to_dict() if "status" in snap.runs else {}
        listed = ", ".join(f"{n} {status}" for status, n in counts.items())
        not_applicable(f"No finished runs yet ({listed}); laws are fitted to runs with status 'done'. Let the sweep "
                       f"finish, or run `gaitforecast run-small --store {snap.path}`. The Runs page shows them all.")
    metric = metric_choice(snap)
    if metric is None:
        not_applicable("The finished runs have no metric to fit. Record metrics (`gaitforecast run-small`) or "
                       "import a table with a metric column.")
    archs = arch_options(snap)
    arch = st.session_state.get("arch")
    if arch not in archs:
        arch = archs[0] if archs else None
    laws = law_options(snap, metric, arch)
    if not laws:
        not_applicable("No law can be fitted: the runs need params and samples (or flops).")
    law = st.session_state.get("law")
    if law not in laws:
        law = laws[0]
    return Context(path=snap.path_key, sig=snap.signature, metric=metric, arch=arch, law=law,
                   n_boot=bootstrap_choice())


def metric_choice(snap: data.Snapshot) -> str | None:
    """The metric chosen in the sidebar (falls back to the default metric of this store)."""
    metrics = data.metric_columns(snap.done, snap.metrics)
    chosen = st.session_state.get("metric")
    if chosen in metrics:
        return chosen
    return data.default_metric(metrics)


def bootstrap_choice() -> int:
    """Number of bootstrap resamples chosen in the sidebar."""
    return int(st.session_state.get("n_boot", DEFAULT_BOOTSTRAP))


def fmt(x: float | int | None, digits: int = 3) -> str:
    """Short human form of a number: 1.23e+18, 4.56M, 0.812; '-' for missing."""
    if x is None:
        return "-"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return "-"
    ax = abs(x)
    if ax == 0:
        return "0"
    if ax >= 1e12 or ax < 1e-3:
        return f"{x:.{digits - 1}e}"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if ax >= scale:
            return f"{x / scale:.{digits}g}{unit}"
    return f"{x:.{digits}g}"


def fmt_interval(lo: float | None, hi: float | None) -> str:
    """'[lo, hi]' in :func:`fmt` form."""
    return f"[{fmt(lo)}, {fmt(hi)}]"


def summary_table(rows: list[tuple[str, float, list[float] | None]]) -> pd.DataFrame:
    """The pages' answer tables: one row per (quantity, value, 95 % interval or None), 4 significant digits (as
    the CLI's tables), indexed by quantity."""
    return pd.DataFrame({
        "quantity": [r[0] for r in rows],
        "value": [f"{r[1]:.4g}" for r in rows],
        "95% low": [f"{r[2][0]:.4g}" if r[2] else "" for r in rows],
        "95% high": [f"{r[2][1]:.4g}" if r[2] else "" for r in rows],
    }).set_index("quantity")


def not_applicable(reason: str) -> None:
    """Say why a page does not apply to this store, then stop the page."""
    st.info(reason)
    st.stop()


def fitted_or_stop(ctx: "Context"):  # noqa: ANN201  (a laws BootstrapResult)
    """The cached bootstrap fit for the sidebar's choices, or the reason it cannot be fitted and ``st.stop()``."""
    from gaitforecast.dashboard import fits

    fit = fits.fitted_case(*ctx.key)
    if not fit.ok:
        st.error(f"Cannot fit law `{ctx.law}` to `{ctx.metric}`: {fit.error}")
        st.stop()
    for note in fit.value.notes:
        st.info(note)
    return fit.value.boot

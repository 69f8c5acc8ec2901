"""Cached calls into :mod:`gaitforecast.laws` for the pages. Nothing here fits by itself.

Every function takes the store path and its content signature first, so results are computed once per store
state and re-used across widget changes and pages; a sweep adding runs changes the signature and invalidates
them. Failures (too few runs, a law that cannot answer) come back as :class:`Outcome` with the message, so a
failing fit is not retried on every rerun and never surfaces as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from gaitforecast import forecast
from gaitforecast.dashboard import data as store_data
from gaitforecast.dashboard.chartdata import (  # noqa: F401  (the pages' chart data, re-exported)
    FRONTIER_POINTS, allocation_lines, backtest_rows, band_frame, default_budget, empirical_frontier,
    exponent_rows, fit_points, fitted_target, frontier_curve, held_options, iso_minima, kind_of, observed_optima,
    series, series_points, split_interval, target_title,
)
from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import (
    FORM_NAMES, BootstrapResult, CostModel, IsoFlopResult,
    curve, diagnose, get_form, isoflop, prepare, rank_forms,
)
from gaitforecast.laws.data import metric_kind, to_target  # noqa: F401  (the Forecast page converts with to_target)
from gaitforecast.laws import backtest as rollout_backtest
from gaitforecast.laws import frontier as allocation_frontier
from gaitforecast.laws.isoflop import iso_groups

SEED = 0


@dataclass
class Outcome:
    """A cached result or the reason there is none."""

    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _guard(fn, *args, **kwargs) -> Outcome:
    try:
        return Outcome(value=fn(*args, **kwargs))
    except GaitforecastError as exc:
        return Outcome(error=str(exc))
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:  # numerical trouble: say so
        return Outcome(error=f"{type(exc).__name__}: {exc}")


def runs_for(path: str, sig: tuple, arch: str | None) -> pd.DataFrame:
    """Finished runs of the store (one architecture when ``arch`` is given)."""
    done = store_data._cached_read(path, sig).done
    if arch is not None and "arch" in done.columns:
        done = done[done["arch"].astype(str) == arch].reset_index(drop=True)
    return done


def architectures(runs: pd.DataFrame) -> list[str]:
    """Architectures among the runs, most runs first, ties by name: the forecast use case's order, so the
    sidebar opens on the architecture the CLI fits."""
    return forecast.architectures(runs)


def candidate_laws(runs: pd.DataFrame, metric: str) -> list[str]:
    """Laws that can be fitted to this metric (the sigmoid only for accuracies and error rates)."""
    names = [n for n in FORM_NAMES if get_form(n).fits(kind_of(runs, metric))]
    need = {"params", "samples", "flops"}
    present = {c for c in need if c in runs.columns and runs[c].notna().all()}
    return [n for n in names if set(get_form(n).inputs) <= present]


@st.cache_data(max_entries=32, show_spinner="Fitting the law and bootstrapping ...")
def _fit_case(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None) -> Outcome:
    runs = store_data._cached_read(path, sig).done
    request = forecast.Request(metric=metric, arch=arch, law=law, resamples=n_boot)
    return _guard(forecast.fit, runs, request)


def fitted_case(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None) -> Outcome:
    """The forecast use case's fit (a forecast.Fitted: runs, bootstrap, notes) of ``law``; ``default`` is the
    use case's own choice, exactly as the CLI makes it. A law that is the default's choice re-uses that fit."""
    if law != forecast.DEFAULT_LAW:
        default = _fit_case(path, sig, metric, forecast.DEFAULT_LAW, n_boot, arch)
        if default.ok and default.value.law.law == law:
            return default
    return _fit_case(path, sig, metric, law, n_boot, arch)


def fitted(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None) -> Outcome:
    """Point fit of ``law`` plus ``n_boot`` run-level bootstrap refits (a BootstrapResult)."""
    got = fitted_case(path, sig, metric, law, n_boot, arch)
    return Outcome(value=got.value.boot) if got.ok else got


def default_law(path: str, sig: tuple, metric: str, n_boot: int, arch: str | None) -> str | None:
    """The law the forecast use case picks for these runs (None when nothing can be fitted)."""
    got = _fit_case(path, sig, metric, forecast.DEFAULT_LAW, n_boot, arch)
    return got.value.law.law if got.ok else None


@st.cache_resource(max_entries=16)
def cost_model(path: str, sig: tuple, arch: str | None) -> CostModel:
    """FLOPs per sample as a function of params: the real family for own runs, the table's ratio for imports."""
    return forecast.cost_model(runs_for(path, sig, arch), arch)


@st.cache_data(max_entries=32, show_spinner="Computing the compute-optimal frontier ...")
def frontier(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None,
             n_points: int = FRONTIER_POINTS) -> Outcome:
    """Allocation (N_opt, D_opt, predicted metric, intervals) over the runs' compute range up to 100x beyond."""
    fit = fitted(path, sig, metric, law, n_boot, arch)
    if not fit.ok:
        return fit
    cost = cost_model(path, sig, arch)
    return _guard(allocation_frontier, fit.value, cost, n_points=n_points)


@st.cache_data(max_entries=64, show_spinner="Allocating the budget ...")
def allocation(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None,
               budget: float) -> Outcome:
    """The forecast use case's answer at ``budget`` FLOPs (the dict `predict --budget --json` prints)."""
    fit = fitted_case(path, sig, metric, law, n_boot, arch)
    if not fit.ok:
        return fit
    return _guard(forecast.forecast_budget, fit.value, budget)


@st.cache_data(max_entries=32)
def law_curve(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None, axis: str,
              fixed: tuple = ()) -> Outcome:
    """The law along one axis with confidence and prediction bands (other axes held at ``fixed``)."""
    fit = fitted(path, sig, metric, law, n_boot, arch)
    if not fit.ok:
        return fit
    return _guard(curve, fit.value, axis, fixed=dict(fixed) or None)


@st.cache_data(max_entries=16)
def isoflop_result(path: str, sig: tuple, metric: str, arch: str | None) -> tuple[IsoFlopResult | None, pd.DataFrame]:
    """IsoFLOP analysis (None when there are no iso-compute groups) and the runs with their group label."""
    runs = runs_for(path, sig, arch)
    try:
        data = prepare(runs, metric, ("params", "flops"))
    except GaitforecastError:
        return None, pd.DataFrame()
    result = isoflop(data)
    labels = iso_groups(data.logx["flops"])
    points = pd.DataFrame({"id": data.ids, "params": np.exp(data.logx["params"]), "y": data.y,
                           "flops": np.exp(data.logx["flops"]), "group": labels})
    if "samples" in data.logx:
        points["samples"] = np.exp(data.logx["samples"])
    points["budget"] = points.groupby("group")["flops"].transform(lambda s: float(np.exp(np.log(s).mean())))
    return result, points


@st.cache_data(max_entries=32, show_spinner="Backtesting ...")
def backtest(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None,
             fit_below: float | None) -> Outcome:
    """Rollout backtest: fit below ``fit_below`` FLOPs, predict the larger runs (a laws Backtest)."""
    runs = runs_for(path, sig, arch)
    return _guard(rollout_backtest, runs, metric, law=law, fit_below=fit_below, n_resamples=n_boot, seed=SEED)


@st.cache_data(max_entries=8, show_spinner="Backtesting every candidate law ...")
def ranked_laws(path: str, sig: tuple, metric: str, arch: str | None, fit_below: float | None) -> Outcome:
    """Every candidate law backtested and ranked by held-out error (best first)."""
    runs = runs_for(path, sig, arch)
    return _guard(rank_forms, runs, metric, fit_below=fit_below, n_resamples=100, seed=SEED)


DEFAULT_LAW = forecast.DEFAULT_LAW  # the use case picks the form (and falls back)


def comparison_law(path: str, sig: tuple, metric: str, preferred: str) -> str:
    """The law both compared architectures are fitted with: ``preferred`` if each one's runs carry it."""
    from gaitforecast.laws import comparison_law as choose

    try:
        return choose(runs_for(path, sig, None), metric, preferred)
    except GaitforecastError:  # the comparison itself reports what is wrong with the runs
        return preferred


@st.cache_data(max_entries=16, show_spinner="Comparing architectures ...")
def comparison(path: str, sig: tuple, metric: str, law: str, n_boot: int) -> Outcome:
    """The two most-run architectures compared at matched compute, with their exponents when ``law`` is
    chinchilla (the forecast use case's comparison, as `gaitforecast compare` prints it: a laws Comparison)."""
    runs = runs_for(path, sig, None)
    return _guard(forecast.compare, runs, forecast.Request(metric=metric, law=law, resamples=n_boot, seed=SEED))


def via_options(runs: pd.DataFrame, metric: str, metrics: list[str]) -> list[str]:
    """Losses a two-step forecast of ``metric`` can go through (as `predict --via`): none unless ``metric`` is an
    accuracy; then every other metric of the runs whose kind is loss."""
    if kind_of(runs, metric) != "accuracy":
        return []
    out = []
    for name in metrics:
        if name == metric or name not in runs.columns or not runs[name].notna().any():
            continue
        try:
            if metric_kind(runs, name) == "loss":
                out.append(name)
        except GaitforecastError:  # a metric of unknown kind is no loss to go through
            continue
    return out


def via_law(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None) -> str:
    """The law to ask the two-step use case for: ``default`` while the sidebar shows the default's choice (so step 1
    is the CLI's default law for a loss), else the sidebar's law, unless it fits accuracies only."""
    if law == default_law(path, sig, metric, n_boot, arch) or get_form(law).accuracy_only:
        return forecast.DEFAULT_LAW
    return law


@st.cache_data(max_entries=32, show_spinner="Fitting the loss law and the link ...")
def via_forecast(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None, via: str,
                 budget: float) -> Outcome:
    """The two-step forecast at ``budget`` FLOPs through the loss ``via`` (the dict `predict --via --json` prints)."""
    runs = store_data._cached_read(path, sig).done
    request = forecast.Request(metric=metric, arch=arch, law=law, resamples=n_boot)
    return _guard(forecast.forecast_via, runs, request, via, budget=budget)


@st.cache_data(max_entries=16, show_spinner="Backtesting the two-step forecast ...")
def via_backtest(path: str, sig: tuple, metric: str, law: str, n_boot: int, arch: str | None, via: str,
                 fit_below: float | None) -> Outcome:
    """The two-step forecast's rollout beside the direct law's at one cutoff (`backtest --via --json`'s dict)."""
    runs = store_data._cached_read(path, sig).done
    request = forecast.Request(metric=metric, arch=arch, law=law, resamples=n_boot)
    return _guard(forecast.backtest_via, runs, request, via, fit_below=fit_below)


def diagnostics(boot: BootstrapResult) -> dict:
    """Seed noise, compute span and warnings of a fit (cheap; not cached)."""
    return diagnose(boot)

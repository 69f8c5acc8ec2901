"""Scaling laws for a store of runs: fit, bootstrap, allocate compute, backtest, compare architectures.

Typical use, on any DataFrame shaped like ``RunStore.runs()``::

    law = fit_law(runs, metric="loss", law="chinchilla")      # a FittedLaw (a value)
    boot = bootstrap(law, n_resamples=1000)                   # intervals on parameters and predictions
    allocate(boot, budget=5.88e23, cost=cost_model_for(runs)) # N_opt, D_opt, predicted metric, intervals
    backtest(runs, metric="loss", law="chinchilla")           # held-out error of the extrapolation
"""

from gaitforecast.laws.allocate import Allocation, CostModel, allocate, closed_form, cost_model_for, frontier
from gaitforecast.laws.backtest import (
    Backtest, backtest, candidate_laws, default_cutoff, fallback_law, rank_forms, resolve_law, select_law, shortfall,
)
from gaitforecast.laws.bootstrap import BootstrapResult, bootstrap, curve
from gaitforecast.laws.comparison import (
    Comparison, ExponentComparison, compare, compare_exponents, compared_archs, comparison_law,
)
from gaitforecast.laws.data import LawData, choose_metric, is_accuracy_metric, metric_columns, metric_kind, prepare
from gaitforecast.laws.diagnostics import diagnose, seed_noise, unidentified_exponents
from gaitforecast.laws.fit import FittedLaw, LawFitter, fit_law
from gaitforecast.laws.forms import FORM_NAMES, FORMS, LawForm, get_form
from gaitforecast.laws.isoflop import IsoFlopResult, isoflop
from gaitforecast.laws.subsample import SAMPLE_HOW, stratified_sample

__all__ = [
    "Allocation", "Backtest", "BootstrapResult", "Comparison", "CostModel", "FittedLaw", "FORM_NAMES", "FORMS",
    "IsoFlopResult", "LawData", "LawFitter", "LawForm", "allocate", "backtest", "bootstrap", "candidate_laws",
    "unidentified_exponents", "choose_metric", "closed_form", "compare", "cost_model_for", "curve", "default_cutoff", "diagnose", "fit_law",
    "frontier", "get_form", "is_accuracy_metric", "isoflop", "metric_columns", "metric_kind", "prepare", "rank_forms",
    "resolve_law", "seed_noise", "select_law", "fallback_law", "comparison_law", "SAMPLE_HOW", "stratified_sample",
    "compared_archs", "ExponentComparison", "compare_exponents", "shortfall",
]

"""The forecast use case: from a store's finished runs to a fitted law, a forecast, a backtest or a comparison.

Every face calls these functions: the CLI (`fit`, `predict`, `backtest`, `compare`) and the dashboard's pages
only parse their input and render what comes back, so one store gives one forecast whichever face asks. The
defaults live here and nowhere else::

    runs = read_runs(store)                                   # finished runs (a RunStore.runs() frame)
    fitted = fit(runs, Request(metric="rank1"))              # arch with the most runs, default law, 1,000 resamples
    forecast_budget(fitted, 1e18)                            # N_opt, D_opt, predicted metric, intervals, warnings

What the defaults choose, in order: the architecture with the most finished runs; the metric named
``metrics.MAIN_METRIC`` (else the runs' only metric); the law ``default`` (chinchilla when the runs vary in
params and samples, else power-compute), replaced by the best-backtested other form when the bootstrap leaves
one of its exponents unidentified (the user is told); 1,000 bootstrap resamples (500 for backtests and
comparisons, which fit many times); seed 0; Huber delta 1e-3 on log residuals; at most 5,000 runs per
architecture: above that, a subsample stratified over log compute (seeded, the largest runs kept), said in the
notes and in ``subsampled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gaitforecast import laws
from gaitforecast.errors import GaitforecastError

DEFAULT_LAW = "default"
DEFAULT_RESAMPLES = 1000
BACKTEST_RESAMPLES = 500
COMPARE_RESAMPLES = 500
RANK_RESAMPLES = 200
DEFAULT_SEED = 0
DEFAULT_HUBER_DELTA = 1e-3
# Runs a law is fitted on, per architecture. Time grows with every run (the 1,000 bootstrap refits see them all:
# `fit` took 15 s on 2,000 runs and 33 s on 5,000 of a Chinchilla-like table, on 2 busy cores), while the
# forecast barely moves (the predicted loss at 1e22 FLOPs: 2.1389 from 2,000 runs, 2.1383 from 5,000).
MAX_FIT_RUNS = 5_000
# What a fit reads of each run (laws.prepare, the cost model, the report's runs table): not the timestamps,
# versions or an import's bookkeeping, most of a large store's bytes.
FIT_FIELDS = ("id", "arch", "width", "seed", "params", "samples", "flops", "source", "config")


@dataclass(frozen=True)
class Request:
    """What to fit: metric (None: the main metric), architecture (None: the most runs), law form, the metric's
    kind (None: as stored, else from its name), bootstrap size and seed, Huber delta, runs left out, and the most
    runs to fit (above it: a compute-stratified subsample, seeded with ``seed``)."""

    metric: str | None = None
    arch: str | None = None
    law: str = DEFAULT_LAW
    kind: str | None = None
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    huber_delta: float = DEFAULT_HUBER_DELTA
    drop_worst: int = 0
    max_runs: int = MAX_FIT_RUNS


@dataclass
class Fitted:
    """A bootstrapped law with the runs it was fitted to and what the user should be told about the choice."""

    runs: pd.DataFrame
    boot: laws.BootstrapResult
    notes: list[str] = field(default_factory=list)
    arch: str | None = None
    subsampled: dict[str, Any] | None = None  # see subsample()

    @property
    def law(self) -> laws.FittedLaw:
        return self.boot.law

    def cost_model(self) -> laws.CostModel:
        """FLOPs per sample as a function of params: see :func:`cost_model`."""
        return cost_model(self.runs, self.arch)

    def warnings(self) -> list[str]:
        """The choice's notes followed by the fit's diagnostics."""
        return list(self.notes) + laws.diagnose(self.boot)["warnings"]


# ---------------------------------------------------------------- runs
def read_runs(store: Path | str) -> pd.DataFrame:
    """Finished runs of the store at ``store`` (the FIT_FIELDS and the metrics); an error naming what to run when
    there are none."""
    from gaitforecast.store import RunStore

    runs = RunStore(store).runs(status="done", fields=FIT_FIELDS, brief_config=True)
    if len(runs) == 0:
        raise GaitforecastError(
            f"the store {store} has no finished runs; run `gaitforecast run-small` or "
            f"`gaitforecast import-runs FILE --store {store}` first")
    return runs


def with_kind(runs: pd.DataFrame, metric: str | None, kind: str | None) -> pd.DataFrame:
    """``runs`` with ``kind`` (loss / accuracy / error) recorded for ``metric``, where laws.prepare reads it."""
    if kind is None or len(runs) == 0:
        return runs
    from gaitforecast.metrics import check_kind

    name = laws.choose_metric(runs, metric)
    runs = runs.copy()
    runs.attrs["metric_kinds"] = {**runs.attrs.get("metric_kinds", {}), name: check_kind(kind)}
    return runs


def architectures(runs: pd.DataFrame) -> list[str]:
    """Architectures among the runs, most runs first (ties by name)."""
    if "arch" not in runs.columns:
        return []
    counts = runs["arch"].dropna().astype(str).value_counts()
    return sorted(counts.index, key=lambda a: (-counts[a], a))


def select_runs(runs: pd.DataFrame, request: Request) -> tuple[pd.DataFrame, str | None, list[str]]:
    """The runs of the requested architecture (default: the one with the most runs), that architecture, and a
    note when the choice was made for the user."""
    runs = with_kind(runs, request.metric, request.kind)
    archs = architectures(runs)
    if not archs:
        return runs, None, []
    if request.arch is not None:
        if request.arch not in archs:
            raise GaitforecastError(f"no finished runs of arch {request.arch!r}; the store has: {', '.join(archs)}")
        arch, notes = request.arch, []
    else:
        arch = archs[0]
        notes = ([f"runs of {len(archs)} architectures; fitting {arch!r} (the most runs), pick another with --arch "
                  "or use `gaitforecast compare`"] if len(archs) > 1 else [])
    chosen = runs[runs["arch"].astype(str) == arch].reset_index(drop=True)
    chosen.attrs = dict(runs.attrs)
    return chosen, arch, notes


def cost_model(runs: pd.DataFrame, arch: str | None = None) -> laws.CostModel:
    """FLOPs per sample as a function of params: gaitforecast's own runs priced by their family's exact FLOP
    table (models.family_table), imported runs by their FLOPs / (N x D) ratio."""
    from gaitforecast.models import family_table  # the family's FLOP formulas (torch loads only to build a model)

    return laws.cost_model_for(runs, arch, family_table=family_table)


# ---------------------------------------------------------------- large stores
def subsample(data: laws.LawData, request: Request) -> tuple[laws.LawData, dict[str, Any] | None]:
    """``data``, or above ``request.max_runs`` runs a subsample of them stratified over log compute
    (laws.stratified_sample, seeded with the request's seed), with what was done: ``{"runs", "used", "cap",
    "seed", "how"}``."""
    keep = laws.stratified_sample(data, request.max_runs, seed=request.seed)
    if keep.all():
        return data, None
    return data.subset(keep), {"runs": data.n, "used": int(keep.sum()), "cap": request.max_runs,
                               "seed": request.seed, "how": laws.SAMPLE_HOW}


def subsample_note(info: dict[str, Any], arch: str | None = None) -> str:
    """What the user is told about a subsample."""
    of = f" of {arch!r}" if arch else ""
    return (f"fitted on {info['used']:,} of the {info['runs']:,} runs{of}: above {info['cap']:,} runs per "
            f"architecture a subsample stratified over log compute is fitted (seed {info['seed']}, the largest "
            "runs kept), so the intervals are those of the runs used")


def subsample_runs(runs: pd.DataFrame, request: Request, metric: str | None = None,
                   ) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The rows of ``runs`` (one architecture) that :func:`subsample` keeps of their ``metric`` (default: the
    request's), for the analyses that take a table (two-step forecasts, comparisons)."""
    if len(runs) <= request.max_runs:
        return runs, None
    data = laws.prepare(runs, metric or request.metric, ())  # refuses bad rows among all of them, naming them
    sample, info = subsample(data, request)
    if info is None:
        return runs, None
    labels = runs["id"].astype(str) if "id" in runs.columns else pd.Series(runs.index.astype(str), index=runs.index)
    kept = runs[labels.isin(set(sample.ids))].reset_index(drop=True)
    kept.attrs = dict(runs.attrs)
    return kept, info


# ---------------------------------------------------------------- fit
def fit(runs: pd.DataFrame, request: Request = Request(), budget: bool = False) -> Fitted:
    """Fit and bootstrap the requested law on the requested architecture's runs.

    With the ``default`` law, a form whose exponents the runs leave unidentified (or that cannot be
    bootstrapped at all) is replaced by the best-backtested other form, and the notes say so. ``budget`` limits
    the default choice to forms that answer a compute budget.
    """
    chosen, arch, notes = select_runs(runs, request)
    data = laws.prepare(chosen, request.metric, ()).drop_worst(request.drop_worst)
    if request.drop_worst:
        notes.append(f"left out the {request.drop_worst} run(s) with the worst {data.metric} (--drop-worst)")
    data, subsampled = subsample(data, request)
    if subsampled:
        notes.append(subsample_note(subsampled))
    name = laws.resolve_law(data, request.law, budget=budget)

    def run(form: str) -> laws.BootstrapResult:
        point = laws.LawFitter(law=form, huber_delta=request.huber_delta).fit(data)
        return laws.bootstrap(point, n_resamples=request.resamples, seed=request.seed)

    try:
        boot = run(name)
        loose = ", ".join(f"{k} (95 % interval [{lo:.3g}, {hi:.3g}])"
                          for k, (lo, hi) in laws.unidentified_exponents(boot).items())
        why = f"leaves {loose} unidentified"
    except GaitforecastError as exc:  # the bootstrap could not refit the form at all
        if request.law != DEFAULT_LAW:
            raise
        boot, loose, why = None, "all", f"could not be bootstrapped on these runs ({str(exc).rstrip('.')})"
    if request.law == DEFAULT_LAW and loose:  # the form the user did not choose is not identified: fall back
        best = laws.fallback_law(data, instead_of=name, budget=budget)
        if best != name:
            notes.append(f"the {name} law {why}; fitted and forecast with {best} instead, the form with the "
                         f"lowest rollout-backtest error (pass --law {name} to keep it)")
            boot = run(best)
    return Fitted(runs=chosen, boot=boot, notes=notes, arch=arch, subsampled=subsampled)


def fit_summary(fitted: Fitted) -> dict[str, Any]:
    """What `fit --json` prints: the bootstrap's parameters and intervals, the metric's kind, diagnostics,
    warnings and the IsoFLOP cross-check."""
    boot = fitted.boot
    diag = laws.diagnose(boot)
    out: dict[str, Any] = boot.to_dict()
    out["params_units"] = out.pop("fitted_as")
    out["kind"] = boot.law.data.kind
    iso = laws.isoflop(boot.law.data)
    out.update({"diagnostics": diag, "warnings": list(fitted.notes) + diag["warnings"],
                "isoflop": iso.to_dict() if iso else None, "subsampled": fitted.subsampled})
    return out


# ---------------------------------------------------------------- forecasts
def _header(fitted: Fitted, cost: laws.CostModel) -> dict[str, Any]:
    law = fitted.law
    return {"law": law.law, "metric": law.metric, "kind": law.data.kind, "cost_model": cost.name,
            "n_runs": law.n_runs, "n_resamples": fitted.boot.n_resamples, "arch": fitted.arch,
            "predicted_units": law.metric, "subsampled": fitted.subsampled}


def forecast_budget(fitted: Fitted, budget: float) -> dict[str, Any]:
    """The compute-optimal configuration at ``budget`` FLOPs: N_opt, D_opt and the predicted metric with
    intervals; ``recommended``/``why`` and the warnings (``not a recommendation`` first when it is not one)."""
    cost = fitted.cost_model()
    alloc = laws.allocate(fitted.boot, budget, cost)
    out = alloc.to_dict()
    first = [f"not a recommendation: {alloc.why}"] if not alloc.recommended else []
    out.pop("notes", None)
    out.update(_header(fitted, cost))
    out["warnings"] = first + fitted.warnings() + list(alloc.notes)
    return out


def forecast_config(fitted: Fitted, params: float, samples: float | None = None,
                    budget: float | None = None) -> dict[str, Any]:
    """The metric of one configuration: ``params`` with ``samples`` (or with the samples ``budget`` buys)."""
    cost = fitted.cost_model()
    per_sample = float(cost.flops_per_sample(np.array([params]))[0])
    if samples is None:
        if budget is None:
            raise GaitforecastError("give the configuration's samples, or a budget to derive them from")
        samples = budget / per_sample
    flops = per_sample * samples
    bands = fitted.boot.predict(params=params, samples=samples, flops=flops).iloc[0]
    out = {
        "budget_flops": flops, "params": params, "samples": samples, "params_opt": None, "samples_opt": None,
        "params_opt_ci": None, "samples_opt_ci": None, "predicted": float(bands["predicted"]),
        "predicted_ci": [float(bands["ci_lo"]), float(bands["ci_hi"])],
        "predicted_pi": [float(bands["pi_lo"]), float(bands["pi_hi"])],
    }
    out.update(_header(fitted, cost))
    out["warnings"] = fitted.warnings()
    return out


def _loss_law(request: Request) -> str:
    """The step-1 law of a two-step forecast: the requested form, chinchilla for ``default``/``auto``."""
    return "chinchilla" if request.law in (DEFAULT_LAW, "auto") else request.law


def forecast_via(runs: pd.DataFrame, request: Request, via: str, budget: float | None = None,
                 params: float | None = None, samples: float | None = None) -> dict[str, Any]:
    """Two-step forecast of an accuracy: a law for the loss ``via``, then the fitted sigmoid link to the accuracy
    (bootstrap through both steps); at ``budget`` (compute-optimal split) or one configuration."""
    from gaitforecast.laws.allocate import optimal_draws
    from gaitforecast.laws.twostep import fit_two_step

    chosen, arch, notes = select_runs(runs, request)
    metric = laws.choose_metric(chosen, request.metric)
    name = _loss_law(request)
    sample, subsampled = subsample_runs(chosen, request, metric)
    notes += [subsample_note(subsampled)] if subsampled else []
    model = fit_two_step(sample, metric, via, law=name, n_resamples=request.resamples, seed=request.seed)
    cost = cost_model(chosen, arch)
    boot = model.loss
    out: dict[str, Any] = model.to_dict()
    if params is not None:
        per_sample = float(cost.flops_per_sample(np.array([params]))[0])
        samples = budget / per_sample if samples is None else samples
        bands = model.predict(params=params, samples=samples, flops=per_sample * samples).iloc[0]
        out.update({"budget_flops": per_sample * samples, "params": params, "samples": samples,
                    "params_opt": None, "samples_opt": None})
    else:  # the link falls as the loss rises, so the loss law's compute-optimal split is the accuracy's too
        if budget is None:
            raise GaitforecastError("give a budget, or params (with samples or a budget)")
        alloc = laws.allocate(boot, budget, cost)
        thetas = np.vstack([boot.law.theta[None, :], boot.thetas])
        loss = boot.law.data.to_metric_units(optimal_draws(boot.law, thetas, budget, cost)[2])
        bands = model.bands(loss[:1], loss[1:, None]).iloc[0]
        out.update({k: v for k, v in alloc.to_dict().items()
                    if k not in ("predicted", "predicted_ci", "predicted_pi", "notes")})
        notes = ([f"not a recommendation: {alloc.why}"] if not alloc.recommended else []) + notes + list(alloc.notes)
    out.update({"predicted": float(bands["predicted"]),
                "predicted_ci": [float(bands["ci_lo"]), float(bands["ci_hi"])],
                "predicted_pi": [float(bands["pi_lo"]), float(bands["pi_hi"])],
                "via_predicted": float(bands["via_predicted"]), "law": name, "metric": metric, "kind": "accuracy",
                "cost_model": cost.name, "predicted_units": metric, "arch": arch, "warnings": notes,
                "subsampled": subsampled})
    return out


# ---------------------------------------------------------------- backtest and comparison
@dataclass
class BacktestReport:
    """A rollout backtest of the ``selected`` form, the candidate forms ranked (or None), and the notes."""

    result: laws.Backtest
    ranking: pd.DataFrame | None
    selected: str
    kind: str
    notes: list[str] = field(default_factory=list)
    subsampled: dict[str, Any] | None = None  # see subsample()

    @property
    def best_ranked(self) -> str | None:
        return None if self.ranking is None else str(self.ranking.iloc[0]["law"])

    def to_dict(self) -> dict[str, Any]:
        out = self.result.to_dict()
        metric = self.result.metric
        out.update({
            "errors_in": f"{metric} (relative, (predicted - actual) / actual; median_abs_error in {metric} "
                         "units, |predicted - actual|)",
            "ranking": None if self.ranking is None else self.ranking.to_dict(orient="records"),
            "selected": self.selected,  # the law whose figures are reported above
            "best_ranked": self.best_ranked, "kind": self.kind, "warnings": list(self.notes),
            "subsampled": self.subsampled,
        })
        return out


def backtest(runs: pd.DataFrame, request: Request = Request(resamples=BACKTEST_RESAMPLES),
             fit_below: float | None = None, rank: bool = True) -> BacktestReport:
    """Rollout backtest of the requested law (``auto``: the best-ranked form), with every candidate form ranked
    by held-out error when ``rank``. The reported figures are the ``selected`` form's."""
    chosen, _, notes = select_runs(runs, request)
    data = laws.prepare(chosen, request.metric, ("flops",)).drop_worst(request.drop_worst)
    data, subsampled = subsample(data, request)
    notes += [subsample_note(subsampled)] if subsampled else []
    ranking = (laws.rank_forms(data, fit_below=fit_below, n_resamples=RANK_RESAMPLES, seed=request.seed)
               if (rank or request.law == "auto") else None)
    if request.law == "auto":
        ok = ranking[ranking["error"].isna()]
        if ok.empty:
            raise GaitforecastError("no law could be backtested: " + "; ".join(ranking["error"].astype(str)))
        name = str(ok.iloc[0]["law"])
    else:
        name = laws.resolve_law(data, request.law)
        if request.law in (None, DEFAULT_LAW):  # the default form is the one the runs below the cutoff can carry
            ln_c = data.logx.get("flops")
            if ln_c is not None:  # (laws.backtest refuses a non-positive cutoff itself)
                cutoff = laws.default_cutoff(ln_c) if fit_below is None else float(fit_below)
                fitted_part = data.subset(ln_c <= np.log(cutoff)) if cutoff > 0 else data
                below = laws.resolve_law(fitted_part, request.law)
                if below != name:
                    notes.append(f"the {name} law needs more runs below the cutoff than there are "
                                 f"({laws.shortfall(fitted_part, name)}); backtested {below} instead (pass --law "
                                 f"{name} to insist)")
                    name = below
    result = laws.backtest(data, law=name, fit_below=fit_below, n_resamples=request.resamples, seed=request.seed)
    return BacktestReport(result=result, ranking=ranking, selected=name, kind=data.kind, notes=notes,
                          subsampled=subsampled)


def backtest_via(runs: pd.DataFrame, request: Request, via: str, fit_below: float | None = None) -> dict[str, Any]:
    """The two-step forecast's rollout beside the direct law's, on the same cutoff; ``winner`` names the better."""
    from gaitforecast.laws.twostep import backtest_two_step

    chosen, _, notes = select_runs(runs, request)
    metric = laws.choose_metric(chosen, request.metric)
    name = _loss_law(request)
    chosen, subsampled = subsample_runs(chosen, request, metric)
    notes += [subsample_note(subsampled)] if subsampled else []
    two = backtest_two_step(chosen, metric, via, law=name, fit_below=fit_below, n_resamples=request.resamples,
                            seed=request.seed)
    direct = laws.backtest(chosen, metric, law=name, fit_below=two.fit_below, n_resamples=request.resamples,
                           seed=request.seed)
    out = two.to_dict()
    out.update({"law": name, "metric": metric, "via": via, "kind": "accuracy", "warnings": notes,
                "subsampled": subsampled,
                "direct": {"law": name, "median_abs_error": direct.median_abs_error,
                           "median_rel_error": direct.median_rel_error, "coverage": direct.coverage,
                           "median_interval_width": direct.median_interval_width},
                "winner": "two-step" if two.median_abs_error < direct.median_abs_error else "direct"})
    return out


def compare(runs: pd.DataFrame, request: Request = Request(resamples=COMPARE_RESAMPLES)) -> laws.Comparison:
    """The two most-run architectures at matched compute, both fitted with one form: the requested one, or for
    ``default``/``auto`` the default form that each architecture's runs can carry (chinchilla when both carry
    it). With chinchilla the result also has each family's exponents with intervals and beta(A) - beta(B) with
    its interval (``exponents``; ``request.resamples`` independent resamples per family, seeded from
    ``request.seed``); with another form ``exponents_note`` says why there are none."""
    runs = with_kind(runs, request.metric, request.kind)
    archs = laws.compared_archs(runs)
    parts, subsampled = [], {}
    for arch in archs:  # each architecture subsampled on its own, as fit does
        part, info = subsample_runs(runs[runs["arch"].astype(str) == arch], request)
        parts.append(part)
        if info:
            subsampled[arch] = info
    if subsampled:
        runs = pd.concat(parts, ignore_index=True)
        runs.attrs = dict(parts[0].attrs)
    law = (laws.comparison_law(runs, request.metric) if request.law in (DEFAULT_LAW, "auto") else request.law)
    try:
        result = laws.compare(runs, request.metric, law=law, n_resamples=request.resamples, seed=request.seed,
                              cost_for=cost_model, archs=archs)
    except GaitforecastError as exc:  # the default form could not be bootstrapped on one family's runs
        if request.law not in (DEFAULT_LAW, "auto") or law == "power-compute":
            raise
        why = f"the {law} law could not be bootstrapped on {exc}"
        result = laws.compare(runs, request.metric, law="power-compute", n_resamples=request.resamples,
                              seed=request.seed, cost_for=cost_model, archs=archs)
        result = replace(result, exponents_note=f"no exponents or beta difference: {why}; both families "
                                     f"compared with power-compute instead (pass --law {law} to insist)")
    return replace(result, subsampled=subsampled or None,
                   warnings=[subsample_note(info, arch) for arch, info in subsampled.items()])


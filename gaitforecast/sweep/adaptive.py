"""The adaptive sweep behind ``run-small --adaptive --budget FLOPS``: train only the runs that narrow the forecast.

Start from a seed design (a few cheap runs spread over the grid's log N x log D, enough configurations for the
law), then loop: refit the law on the finished runs, ask :func:`gaitforecast.laws.design.plan_next` for the next
batch among the grid's untrained runs (most expected narrowing of the forecast at the target budget per FLOP),
train it with :func:`gaitforecast.sweep.executors.run_sweep`, repeat until no untrained run fits in what is left
of the budget. Compute spent is the FLOPs of the grid's finished runs in the store, so runs trained earlier (by
``run-small`` or a previous adaptive call) count.

Every decision is an artifact of kind ``adaptive_decision`` (key ``<session>:<step>``): the step, the runs chosen
and why, the forecast's width before, the width the design expects after, the width a refit measured after
(filled in at the next step), compute spent and the budget. The session is the grid, metric, target and
objective, so re-running the same command after a kill reads the log back, first trains the runs of the last
decision that did not finish (done runs are never retrained: the executor skips their ids), then goes on with
the next step.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from gaitforecast.errors import GaitforecastError
from gaitforecast.sweep.planner import PlannedRun

DECISION_KIND = "adaptive_decision"
TARGET_FACTOR = 10.0  # default target: this many times the grid's largest run


@dataclass(frozen=True)
class AdaptiveSummary:
    """How an adaptive sweep call ended (the decisions themselves are in the store)."""

    session: str
    arch: str
    metric: str
    target_budget: float
    budget: float
    spent: float
    steps: int  # decisions in the log, seed design included
    trained: int  # runs this call trained
    stopped: str  # why the loop ended
    width: float | None  # the forecast's width after the last refit
    decisions: list[dict] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def session_key(runs: list[PlannedRun], metric: str, target_budget: float, objective: str) -> str:
    """Identity of an adaptive sweep: the same grid, metric, target and objective continue one decision log."""
    text = json.dumps({"ids": sorted(r.id for r in runs), "metric": metric, "target": f"{target_budget:.6g}",
                       "objective": objective}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def decisions(store: Any, session: str | None = None) -> list[dict]:
    """The stored decisions (payloads), of one session when given, in step order."""
    found = [a["payload"] for a in store.artifacts(DECISION_KIND)] if store.exists() else []
    if session is not None:
        found = [p for p in found if p.get("session") == session]
    return sorted(found, key=lambda p: (p.get("session", ""), int(p.get("step", 0))))


def grid_arch(runs: list[PlannedRun]) -> tuple[str, list[PlannedRun], str | None]:
    """The architecture an adaptive sweep works on (one law: the one the grid plans most runs of), its runs and a
    note naming the runs left out, if any."""
    counts = Counter(r.arch for r in runs)
    arch = counts.most_common(1)[0][0]
    chosen = [r for r in runs if r.arch == arch]
    note = None
    if len(counts) > 1:
        others = ", ".join(f"{a} ({n} runs)" for a, n in counts.items() if a != arch)
        note = (f"the adaptive sweep fits one law, for {arch} ({len(chosen)} planned runs); it leaves out {others}: "
                "give them a spec of their own")
    return arch, chosen, note


def _run_entry(run: PlannedRun, why: str, expected: float | None) -> dict:
    return {"id": run.id, "label": run.label(), "arch": run.arch, "width": run.width, "fraction": run.fraction,
            "seed": run.seed, "params": run.params, "samples": run.samples, "flops": run.flops, "why": why,
            "expected_width": expected}


def _finite(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def run_adaptive(planned: list[PlannedRun], store: Any, budget: float, train: Callable[[list[PlannedRun]], Any],
                 *, target_budget: float | None = None, metric: str | None = None, batch: int = 1,
                 n_resamples: int = 200, seed: int = 0, objective: str = "metric", spec_name: str = "",
                 note: Callable[[str], None] = lambda text: None) -> AdaptiveSummary:
    """Spend ``budget`` FLOPs on the runs of ``planned`` that narrow the forecast most (see the module docstring).

    ``train(runs)`` trains runs into ``store`` (the CLI passes :func:`run_sweep` with its options); ``batch`` runs
    are chosen per refit (the number of parallel workers is a good value). Returns how the call ended.
    """
    from gaitforecast.forecast import cost_model
    from gaitforecast.laws.candidates import Candidates, spread_runs
    from gaitforecast.laws.belief import forecast_ensemble
    from gaitforecast.laws.design import design_fit, design_law, plan_next
    from gaitforecast.laws.forms import FORMS
    from gaitforecast.metrics import MAIN_METRIC

    if not (np.isfinite(budget) and budget > 0):
        raise GaitforecastError(f"--budget must be a positive number of FLOPs, got {budget}")
    if batch < 1:
        raise GaitforecastError(f"batch must be at least 1, got {batch}")
    arch, grid, left_out = grid_arch(planned)
    if left_out:
        note(left_out)
    metric = metric or MAIN_METRIC
    target = float(target_budget or TARGET_FACTOR * max(r.flops for r in grid))
    session = session_key(grid, metric, target, objective)
    by_id = {r.id: r for r in grid}
    log = decisions(store, session)
    trained = 0
    all_cands = Candidates(np.array([r.params for r in grid], float), np.array([r.samples for r in grid], float),
                           np.array([r.flops for r in grid], float), tuple(r.id for r in grid))
    if log:
        note(f"adaptive sweep {session}: resuming after step {log[-1]['step']} ({len(log)} decisions stored)")

    def state() -> tuple[pd.DataFrame, set[str], set[str], float]:
        runs = store.runs() if store.exists() else pd.DataFrame(columns=["id", "status"])
        mine = runs[runs["id"].isin(by_id)] if len(runs) else runs
        done = set(mine.loc[mine["status"] == "done", "id"])
        failed = set(mine.loc[mine["status"] == "failed", "id"])
        finished = mine[mine["status"] == "done"].copy()
        if len(runs):
            finished.attrs = runs.attrs
        return finished, done, failed, float(sum(by_id[i].flops for i in done))

    def save(decision: dict) -> None:
        with store.writer() as w:
            w.put_artifact(DECISION_KIND, decision, key=f"{session}:{decision['step']:04d}")

    def train_now(runs: list[PlannedRun]) -> None:
        nonlocal trained
        if runs:
            before = state()[1]
            train(runs)
            trained += len(state()[1] - before)

    cost, width = None, None
    stopped = ""
    while True:
        finished, done, failed, spent = state()
        if log:  # the last decision's runs first: a kill or Ctrl-C may have left some untrained
            pending = [by_id[r["id"]] for r in log[-1]["runs"] if r["id"] not in done | failed and r["id"] in by_id]
            if pending:
                note(f"step {log[-1]['step']}: training {len(pending)} run(s) decided before the stop")
                train_now(pending)
                finished, done, failed, spent = state()
                unfinished = [r.label() for r in pending if r.id not in done | failed]
                if unfinished:
                    stopped = f"runs did not finish: {', '.join(unfinished)}; rerun the same command to resume"
                    break
        untrained = np.array([r.id not in done | failed for r in grid])
        affordable = untrained & (all_cands.flops <= budget - spent)
        if len(finished) and cost is None:
            cost = cost_model(finished, arch)
        if not log:  # the seed design: cheap runs spread over the grid, enough configurations for the law
            law_name = design_law(None, metric, all_cands)
            configs = len({(r.params, r.samples) for r in grid})
            n_seed = min(FORMS[law_name].min_runs + 1, configs)  # a grid smaller than that: all of it
            picks = spread_runs(all_cands.params, all_cands.samples, all_cands.flops, n_seed, budget=budget - spent)
            if len(picks) < n_seed:
                need = sum(sorted(all_cands.flops)[:n_seed])
                raise GaitforecastError(
                    f"a budget of {budget:.3g} FLOPs ({spent:.3g} already spent on this grid) does not cover the "
                    f"seed design: {n_seed} runs spread over the grid for a {law_name} law need about {need:.3g} "
                    "FLOPs or more; raise --budget")
            chosen = [grid[i] for i in picks]
            decision = _decision(session, 0, spec_name, arch, metric, law_name, objective, target, budget, spent,
                                 [_run_entry(r, "seed design: cheap runs spread over log N x log D", None)
                                  for r in chosen], None, None, None, "seed design")
        else:
            if not affordable.any() and len(finished):
                try:
                    boot, _ = design_fit(finished, metric, all_cands, n_resamples=n_resamples, seed=seed)
                    width = forecast_ensemble(boot, target, cost, objective, seed).width
                except GaitforecastError:
                    width = None
            else:
                design = plan_next(finished, metric, all_cands.subset(affordable), target, cost, budget - spent,
                                   n=batch, n_resamples=n_resamples, seed=seed, objective=objective, horizon=None)
                width = _finite(design.current_width)
            if log[-1].get("width_after") is None and width is not None:
                log[-1] = {**log[-1], "width_after": width, "spent_after": spent}
                save(log[-1])
            if not affordable.any():
                stopped = ("budget spent" if untrained.any() else "every run of the grid is trained")
                break
            index = np.flatnonzero(affordable)
            chosen = [grid[index[s.index]] for s in design.suggestions]
            decision = _decision(session, int(log[-1]["step"]) + 1, spec_name, arch, metric, design.law, objective,
                                 target, budget, spent,
                                 [_run_entry(r, s.why, _finite(s.expected_width))
                                  for r, s in zip(chosen, design.suggestions)],
                                 width, _finite(design.expected_width), design.interval,
                                 "design" if design.current_width is not None else "spread", list(design.notes))
        save(decision)
        log.append(decision)
        note(_describe(decision))
        train_now(chosen)
    finished, done, failed, spent = state()
    note(f"adaptive sweep {session}: {stopped}; {spent:.3g} of {budget:.3g} FLOPs spent over {len(log)} steps"
         + (f", forecast width {width:.4g}" if width is not None else ""))
    return AdaptiveSummary(session=session, arch=arch, metric=metric, target_budget=target, budget=budget,
                           spent=spent, steps=len(log), trained=trained, stopped=stopped, width=width,
                           decisions=log)


def _decision(session: str, step: int, spec_name: str, arch: str, metric: str, law: str, objective: str,
              target: float, budget: float, spent: float, runs: list[dict], width: float | None,
              expected: float | None, interval: list[float] | None, kind: str, notes: list[str] = ()) -> dict:
    return {
        "session": session, "step": step, "kind": kind, "spec": spec_name, "arch": arch, "metric": metric,
        "law": law, "objective": objective, "target_budget": target, "budget": budget, "spent_before": spent,
        "spent_planned": spent + sum(r["flops"] for r in runs), "width_before": width, "interval_before": interval,
        "expected_width_after": expected, "width_after": None, "spent_after": None, "runs": runs,
        "notes": list(notes),
    }


def _describe(decision: dict) -> str:
    runs = ", ".join(f"{r['label']} ({r['flops']:.3g} FLOPs)" for r in decision["runs"])
    width = decision["width_before"]
    if width is None:
        head = f"step {decision['step']} ({decision['kind']})"
    else:
        expected = decision["expected_width_after"]
        head = (f"step {decision['step']}: forecast width {width:.4g}"
                + (f" -> {expected:.4g} expected" if expected is not None else ""))
    return f"{head}; training {runs}; {decision['spent_before']:.3g} of {decision['budget']:.3g} FLOPs spent"

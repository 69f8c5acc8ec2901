"""Which run to train next (laws/design.py, `gaitforecast suggest`, the Sweep design page): rankings with a known
answer, the ensemble update they rest on, the seed design, the imported table's grid, the command's output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from adaptive_util import fake_trainer, grid_runs
from gaitforecast.dashboard import ENTRY_SCRIPT, designview
from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import CostModel
from gaitforecast.laws.candidates import Candidates, spread_runs, table_grid
from gaitforecast.laws.belief import fit_for_design
from gaitforecast.laws.design import condition, suggest
from gaitforecast.laws.synthetic import synthetic_runs
from gaitforecast.store import RunStore
from laws_data import CHINCHILLA_CSV, chinchilla_runs
from test_cli_runs import gaitforecast

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
COST = CostModel.per_param_sample(6.0)


def _boot(params_range, samples_range, resamples=100, seed=1):
    """A Chinchilla law on 30 synthetic runs, bootstrapped as a design fits it (laws.design.fit_for_design)."""
    runs = synthetic_runs("chinchilla", TRUTH, n_configs=30, noise=0.01, seed=seed, params_range=params_range,
                          samples_range=samples_range)
    return fit_for_design(runs, "loss", "chinchilla", n_resamples=resamples)


def test_data_axis_runs_rank_first_when_the_data_axis_is_unidentified():
    """Runs at one data size (1.0-1.2e9 samples) cannot identify beta: the fit holds it, the design spreads it
    over [0.05, 1], and runs with other data sizes rank above runs with other model sizes of the same cost."""
    boot = _boot((1e7, 1e9), (1e9, 1.2e9))
    assert "beta" in boot.law.fixed  # the fit itself says the data exponent is not identified
    params, samples = np.array([2e9, 5e9, 2e8, 2e8]), np.array([1e9, 1e9, 1e10, 2.5e10])
    cands = Candidates(params, samples, 6 * params * samples, ("N x2", "N x5", "D x8", "D x21"))
    assert cands.flops[0] == cands.flops[2] and cands.flops[1] == cands.flops[3]  # pairs of equal cost
    design = suggest(boot, cands, 1e21, COST, budget=1e21, n=4)
    order = [s.label for s in design.suggestions]
    assert order[:2] == ["D x8", "D x21"], order
    assert design.spread == {"beta": [0.05, 1.0]}
    first = design.suggestions[0]
    assert first.variance_removed > 0.5 and first.correlation > 0.8 and "more samples than any run" in first.why
    widths = [design.current_width] + [s.expected_width for s in design.suggestions]
    assert all(a > b for a, b in zip(widths, widths[1:]))  # each run narrows the expected interval
    assert widths[1] < 0.5 * widths[0]  # the first data-axis run more than halves it (1.10 -> 0.31 when written)


def test_params_axis_runs_rank_first_when_the_params_axis_is_unidentified():
    """The mirror case, through the bootstrap alone (nothing held): runs of one model size (1.0-1.2e8 parameters)
    and candidates of equal cost that vary the parameters, or the samples inside the runs' range: the
    parameter-axis runs rank first, and the first one removes nearly all of the forecast's variance."""
    boot = _boot((1e8, 1.2e8), (1e8, 1e10), seed=2)
    params, samples = np.array([1e9, 5e8, 1.1e8, 1.1e8]), np.array([1e9, 1e9, 9.09e9, 4.55e9])
    cands = Candidates(params, samples, 6 * params * samples, ("N 1e9", "N 5e8", "D 9e9", "D 4.5e9"))
    design = suggest(boot, cands, 1e21, COST, budget=1e21, n=4)
    assert sorted(s.label for s in design.suggestions[:2]) == ["N 1e9", "N 5e8"]
    assert design.suggestions[0].variance_removed > 0.9 and not design.spread
    assert all(s.variance_removed < 0.05 for s in design.suggestions[2:])  # the data runs add next to nothing


def test_budget_and_count_are_respected_and_unaffordable_runs_never_suggested():
    boot = _boot((1e7, 1e9), (1e8, 1e10))
    params, samples = np.geomspace(1e7, 3e9, 8), np.geomspace(1e8, 3e10, 8)
    p, s = (a.ravel() for a in np.meshgrid(params, samples))
    cands = Candidates(p, s, 6 * p * s)
    budget = 1e19
    design = suggest(boot, cands, 1e21, COST, budget=budget, n=5)
    assert 1 <= len(design.suggestions) <= 5 and design.spent <= budget
    assert all(x.flops <= budget for x in design.suggestions)
    assert len({x.index for x in design.suggestions}) == len(design.suggestions)  # a run suggested once
    assert design.n_affordable == int((cands.flops <= budget).sum()) < len(cands)
    with pytest.raises(GaitforecastError, match="no candidate run fits a budget of 1e\\+10 FLOPs"):
        suggest(boot, cands, 1e21, COST, budget=1e10)


def test_a_plans_large_runs_wait_for_the_cheap_runs_it_starts_with():
    """Planned to a budget, the best plan here is one the knapsack guard anchors on a large run (15 % of the
    grid's compute). Its runs are trained most variance removed per FLOP first, so the cheap ones come first and
    the large one waits for their refit (before this ordering, the large run was the first suggestion)."""
    runs = synthetic_runs("chinchilla", TRUTH, n_configs=12, noise=0.01, seed=3, params_range=(1e7, 4e7),
                          samples_range=(1e8, 4e8))
    boot = fit_for_design(runs, "loss", "chinchilla", n_resamples=100)
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e9, 6), np.geomspace(1e8, 1e10, 6), indexing="ij"))
    cands = Candidates(n, d, 6 * n * d)
    total = cands.flops.sum()
    design = suggest(boot, cands, 1e21, COST, budget=0.3 * total, n=3, horizon=None)
    assert 0.25 * total < design.plan_flops <= 0.3 * total  # the plan spends the budget, large runs included
    assert max(s.flops for s in design.suggestions) < 1e-3 * total  # but starts with its cheap runs
    widths = [design.current_width] + [s.expected_width for s in design.suggestions]
    assert all(a > b for a, b in zip(widths, widths[1:]))


def test_condition_is_the_kalman_update_of_the_ensemble_covariance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 4)) @ np.array([[1, .5, 0, .2], [0, 1, .3, 0], [0, 0, 1, .4], [0, 0, 0, 1]])
    x -= x.mean(axis=0)
    p = x.T @ x / (len(x) - 1)
    after = condition(x, 2, 0.3)
    want = p - np.outer(p[:, 2], p[2, :]) / (p[2, 2] + 0.3)
    assert np.allclose(after.T @ after / (len(x) - 1), want, rtol=1e-10, atol=1e-12)
    assert after[:, 2].var(ddof=1) == pytest.approx(p[2, 2] * 0.3 / (p[2, 2] + 0.3))


def test_seed_design_spreads_cheap_runs_over_both_axes():
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e8, 5), np.geomspace(1e7, 1e9, 5), indexing="ij"))
    flops = 6 * n * d
    picks = spread_runs(n, d, flops, 8)
    assert len(picks) == len(set(picks)) == 8
    assert picks[0] == int(np.argmin(flops))  # the cheapest run first
    assert all(flops[i] <= np.median(flops) for i in picks)  # from the cheaper half of the grid
    assert {n.min(), n[picks].max()} <= set(n[picks]) and len(set(n[picks])) >= 4 and len(set(d[picks])) >= 4
    assert n[picks].max() >= 1e7 and d[picks].max() >= 1e8  # reaches far along each axis
    assert spread_runs(n, d, flops, 8, budget=3 * flops.min()) == [int(np.argmin(flops))]
    # with runs done, the next runs fill the widest gap: the cheap corner is taken, so it goes elsewhere
    more = spread_runs(n, d, flops, 1, existing=(n[picks], d[picks]))
    assert more[0] not in picks


def test_imported_table_grid_is_its_empty_cells():
    runs = chinchilla_runs()
    params, samples = table_grid(runs["params"].to_numpy(), runs["samples"].to_numpy())
    cells = {(round(np.log10(p) / 0.125), round(np.log10(s) / 0.125)) for p, s in zip(params, samples)}
    used = {(round(np.log10(p) / 0.125), round(np.log10(s) / 0.125)) for p, s in zip(runs["params"], runs["samples"])}
    levels = [len({round(np.log10(v) / 0.125) for v in runs[k]}) for k in ("params", "samples")]
    assert len(cells) == len(params) == levels[0] * levels[1] - len(used) == 280 and not cells & used
    assert params.min() >= runs["params"].min() * 0.8 and params.max() <= runs["params"].max() * 1.2


@pytest.fixture(scope="module")
def chin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chin") / "chin.duckdb"
    res = gaitforecast("import-runs", str(CHINCHILLA_CSV), "--store", str(path), "--column", "params=Model Size",
                       "--column", "flops=Training FLOP", "--metric", "loss", cwd=path.parent)
    assert res.returncode == 0, res.stderr
    return path


def test_suggest_on_an_imported_table(chin):
    res = gaitforecast("suggest", "--store", str(chin), "--budget", "3e21", "--n", "4", "--metric", "loss",
                       "--resamples", "100", "--json", cwd=chin.parent)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    from gaitforecast.laws import cost_model_for

    runs = RunStore(chin).runs()
    params, samples = table_grid(runs["params"].to_numpy(), runs["samples"].to_numpy())
    largest = max(runs["flops"].max(), (cost_model_for(runs).flops_per_sample(params) * samples).max())
    assert doc["target_budget"] == pytest.approx(10 * largest)  # default: 10x the largest run or candidate
    assert doc["law"] == "chinchilla" and doc["candidates_from"].startswith("the table's N x D grid: 316")
    rows = doc["suggestions"]
    assert len(rows) == 4 and sum(r["flops"] for r in rows) <= 3e21
    for key in ("arch", "params", "samples", "flops", "expected_width", "why", "label"):
        assert all(key in r for r in rows), key
    widths = [doc["current_width"]] + [r["expected_width"] for r in rows]
    assert all(a > b > 0 for a, b in zip(widths, widths[1:]))
    lo, hi = doc["interval"]
    assert lo < doc["predicted"] < hi and hi - lo == pytest.approx(doc["current_width"])
    for r in rows:  # suggested cells are flops = 6 N D (the table's own ratio) and not runs of the table
        assert r["flops"] == pytest.approx(6 * r["params"] * r["samples"], rel=0.02)
    human = gaitforecast("suggest", "--store", str(chin), "--budget", "3e21", "--n", "2", "--metric", "loss",
                         "--resamples", "100", cwd=chin.parent)
    assert human.returncode == 0 and "next runs, best first" in human.stderr and "why" in human.stderr


@pytest.mark.parametrize("args, message", [
    ((), "pass --budget FLOPS"),
    (("--budget", "1e10"), "no candidate run fits a budget of 1e+10 FLOPs"),
    (("--budget", "1e21", "--objective", "loss"), "--objective 'loss': use one of metric, n_opt"),
])
def test_suggest_refuses_bad_input_in_one_line(chin, args, message):
    res = gaitforecast("suggest", "--store", str(chin), "--metric", "loss", "--resamples", "50", *args,
                       cwd=chin.parent)
    assert res.returncode == 2 and message in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def adaptive_store(tmp_path_factory) -> Path:
    """A store after an adaptive sweep of the tests' 25-run grid (fake training, tests/adaptive_util.py)."""
    from gaitforecast.sweep.adaptive import run_adaptive

    path = tmp_path_factory.mktemp("adaptive") / "s.duckdb"
    store, runs = RunStore(path), grid_runs()
    run_adaptive(runs, store, 0.05 * sum(r.flops for r in runs), fake_trainer(store, path.parent / "ledger.txt"),
                 batch=3, n_resamples=60, spec_name="test-grid")
    return path


def test_suggest_on_own_runs_takes_the_specs_untrained_runs(adaptive_store, tmp_path):
    from adaptive_util import GRID

    spec = tmp_path / "grid.toml"
    spec.write_text(_toml(GRID))
    res = gaitforecast("suggest", "--store", str(adaptive_store), "--spec", str(spec), "--budget", "1e12",
                       "--n", "3", "--resamples", "60", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    done = RunStore(adaptive_store).done_ids()
    planned = {r.id for r in grid_runs()}
    assert doc["candidates_from"] == f"sweep 'grid': {25 - len(done)} planned gaitformer runs not yet in the store"
    assert 1 <= len(doc["suggestions"]) <= 3
    for row in doc["suggestions"]:
        assert row["id"] in planned and row["id"] not in done and row["arch"] == "gaitformer"
        assert row["width"] in (8, 16, 32, 64, 128) and row["seed"] == 0


def _toml(raw: dict) -> str:
    lines = []
    for section in ("data", "train"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in raw[section].items()]
    for block in raw["grid"]:
        lines.append("[[grid]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in block.items()]
    return "\n".join(lines) + "\n"


def _page(store: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("GAITFORECAST_STORE", str(store))
    at = AppTest.from_file(str(ENTRY_SCRIPT), default_timeout=90)
    at.run()
    at.switch_page("views/design.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_sweep_design_page_shows_the_decisions(adaptive_store, monkeypatch):
    from gaitforecast.sweep.adaptive import decisions

    log = decisions(RunStore(adaptive_store))
    at = _page(adaptive_store, monkeypatch)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Decisions"] == str(len(log))
    assert shown["Runs chosen"] == str(sum(len(d["runs"]) for d in log))
    steps, runs = at.dataframe[0].value, at.dataframe[1].value
    assert list(steps["step"]) == list(range(len(log)))
    assert list(runs["run"]) == [r["label"] for d in log for r in d["runs"]] and runs["why"].str.len().min() > 10
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    layers = spec["layer"]
    assert layers[0]["encoding"]["x"]["scale"]["type"] == "log" and layers[0]["encoding"]["y"]["field"] == "width"
    assert layers[1]["mark"]["type"] == "point" and layers[1]["mark"]["filled"] is False  # expected widths
    points = designview.width_points(log)  # what the chart draws
    measured = points[points["series"] == "measured"]
    assert len(measured) == len(log)  # a width per refit: after the seed design and after each later step
    assert list(measured["compute"]) == [d["spent_before"] for d in log[1:]] + [log[-1]["spent_after"]]
    assert measured["width"].iloc[-1] == pytest.approx(log[-1]["width_after"])
    assert len(points[points["series"] == "expected"]) == len(log) - 1  # the seed design expects nothing


def test_sweep_design_page_without_decisions_says_what_to_run(chin, monkeypatch):
    at = _page(chin, monkeypatch)
    assert "No adaptive sweep in this store yet" in at.info[0].value
    assert f"gaitforecast run-small --adaptive --budget 1e13 --store {chin}" in at.code[0].value

"""Allocation: numeric search vs Hoffmann's closed form, real-family costs, intervals, IsoFLOP cross-check."""

import json

import numpy as np
import pandas as pd
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import CostModel, allocate, bootstrap, closed_form, cost_model_for, fit_law, frontier, isoflop
from gaitforecast.laws.allocate import optimal_draws
from gaitforecast.laws.synthetic import synthetic_runs
from laws_data import chinchilla_runs

EPOCH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


@pytest.fixture(scope="module")
def chinchilla_boot():
    return bootstrap(fit_law(chinchilla_runs(), "loss", "chinchilla"), n_resamples=300, seed=0)


def _law_with(params, runs=None):
    """A FittedLaw whose parameters are replaced by ``params`` (to test allocation against known numbers)."""
    from dataclasses import replace

    from gaitforecast.laws.synthetic import theta_from_params

    law = fit_law(runs if runs is not None else chinchilla_runs(), "loss", "chinchilla")
    return replace(law, theta=theta_from_params("chinchilla", params), params=dict(params))


@pytest.mark.parametrize("budget", [1e18, 1e21, 5.88e23, 1e26])
@pytest.mark.parametrize("ratio", [6.0, 2.5])
def test_numeric_search_agrees_with_closed_form(budget, ratio):
    law = _law_with(EPOCH)
    n_num, d_num, _ = optimal_draws(law, law.theta[None, :], budget, CostModel.per_param_sample(ratio))
    n_closed, d_closed = closed_form(EPOCH, budget, ratio)
    assert n_num[0] == pytest.approx(n_closed, rel=1e-5)
    assert d_num[0] == pytest.approx(d_closed, rel=1e-5)


def test_epoch_allocation_at_chinchilla_budget():
    """fitting.md §1.5: Epoch's parameters give N* 73.0 B, D* 1.34 T, 18.4 samples/param, L* 1.974."""
    alloc = allocate(_law_with(EPOCH), 5.88e23)
    assert alloc.params_opt == pytest.approx(73.0e9, rel=0.01)
    assert alloc.samples_opt == pytest.approx(1.34e12, rel=0.01)
    assert alloc.samples_per_param == pytest.approx(18.4, rel=0.02)
    assert alloc.predicted == pytest.approx(1.974, abs=0.001)


def test_allocation_intervals_from_the_bootstrap(chinchilla_boot):
    alloc = allocate(chinchilla_boot, 5.88e23, CostModel.per_param_sample(6.0))
    assert alloc.params_opt == pytest.approx(7.4e10, rel=0.03)
    lo, hi = alloc.params_opt_ci
    assert lo < alloc.params_opt < hi and 2 < hi / lo < 5  # Epoch's 80 % band alone spans ~2x
    assert alloc.samples_opt_ci[0] < alloc.samples_opt < alloc.samples_opt_ci[1]
    assert alloc.samples_per_param_ci[0] < 18 < alloc.samples_per_param_ci[1]
    assert alloc.predicted_pi[0] <= alloc.predicted_ci[0] < alloc.predicted < alloc.predicted_ci[1] <= alloc.predicted_pi[1]
    assert alloc.notes == ()  # 4.6x the largest model, 45x the largest run's compute: no warning yet
    far = allocate(chinchilla_boot, 1e27, CostModel.per_param_sample(6.0))
    assert any("10x the largest fitted run" in note for note in far.notes)
    assert any("100x the largest fitted run's compute" in note for note in far.notes)


def test_an_optimum_outside_the_family_or_unidentified_is_not_recommended(chinchilla_boot):
    ok = allocate(chinchilla_boot, 5.88e23, CostModel.per_param_sample(6.0))
    assert ok.recommended and ok.why is None
    small = CostModel(name="toy family", flops_per_sample=lambda n: 6.0 * np.asarray(n, float),
                      params_range=(1e6, 1e9))
    out = allocate(chinchilla_boot, 5.88e23, small)  # N_opt ~7e10 is beyond the family's largest model
    assert not out.recommended and "outside the sizes of the toy family" in out.why
    assert out.to_dict()["recommended"] is False
    # a table that only varies N at one D cannot split a budget: the interval spans decades
    flat = synthetic_runs("chinchilla", {"E": 1.5, "A": 300.0, "B": 800.0, "alpha": 0.35, "beta": 0.3},
                          n_configs=30, noise=0.02, seed=1, samples_range=(1e8, 1.3e8))
    boot = bootstrap(fit_law(flat, "loss", "chinchilla"), n_resamples=200, seed=0)
    loose = allocate(boot, 1e22, CostModel.per_param_sample(6.0))
    assert not loose.recommended and "do not identify the split" in loose.why


def test_attention_heavy_family_moves_the_optimum():
    """Attention adds per-sample FLOPs (~ d * tokens, here 5x the dense FLOPs near the optimum): the budget buys
    far fewer samples and the optimum leaves the 6ND answer; the search still finds the true minimum."""
    law = _law_with(EPOCH)
    widths = np.geomspace(1e7, 1e12, 30)
    exact = CostModel.from_family_table(pd.DataFrame({"params": widths, "train_flops_per_sample": 6 * widths}))
    heavy = CostModel.from_family_table(pd.DataFrame({"params": widths,
                                                      "train_flops_per_sample": 6 * widths + 3e6 * widths ** 0.5}))
    n_exact, d_exact, _ = optimal_draws(law, law.theta[None, :], 1e22, exact)
    n_closed, _ = closed_form(EPOCH, 1e22)
    assert n_exact[0] == pytest.approx(n_closed, rel=1e-4)
    n_heavy, d_heavy, _ = optimal_draws(law, law.theta[None, :], 1e22, heavy)
    assert abs(np.log(n_heavy[0] / n_exact[0])) > 0.1 and d_heavy[0] < 0.5 * d_exact[0]
    assert d_heavy[0] * heavy.flops_per_sample(n_heavy)[0] == pytest.approx(1e22, rel=1e-9)  # spends the budget

    def loss_at(n):
        return law.predict_fitted(params=n, samples=1e22 / heavy.flops_per_sample(np.array([n]))[0])

    assert loss_at(n_heavy[0]) < min(loss_at(n_heavy[0] * 1.05), loss_at(n_heavy[0] / 1.05))


def test_cost_model_for_imported_and_own_runs():
    imported = chinchilla_runs()
    assert cost_model_for(imported).ratio == pytest.approx(6.0, rel=1e-9)
    doubled = imported.assign(flops=imported["flops"] * 2)
    assert cost_model_for(doubled).ratio == pytest.approx(12.0, rel=1e-9)
    from gaitforecast.sweep.planner import plan
    from gaitforecast.sweep.spec import load_profile

    planned = [r for r in plan(load_profile("default")) if r.arch == "gaitformer" and r.seed == 0]
    own = pd.DataFrame({"source": "gaitforecast", "arch": r.arch, "width": r.width, "params": r.params,
                        "samples": r.samples, "flops": r.flops, "config": json.dumps(r.config)} for r in planned)
    from gaitforecast.models import family_table

    assert cost_model_for(own).ratio is not None  # the laws price by the table unless given the family's FLOPs
    model = cost_model_for(own, family_table=family_table)
    frames = planned[0].config["model"]["frames"]
    assert frames == 32 and model.ratio is None and model.name == f"gaitformer family (frames={frames})"
    # the exact FLOP accounting of the runs themselves (attention over 32 frames), not a 60-frame guess
    per_sample = model.flops_per_sample(own["params"].to_numpy(float))
    np.testing.assert_allclose(per_sample, own["flops"] / own["samples"], rtol=1e-6)
    assert (per_sample > 6 * own["params"]).all()  # frames x joints as tokens: far above 6 per parameter


def test_compute_only_law_predicts_but_does_not_split():
    runs = synthetic_runs("power-compute", {"E": 0.5, "A": 250.0, "k": 0.2}, n_configs=30, seed=0)
    boot = bootstrap(fit_law(runs, "loss", "power-compute"), n_resamples=100)
    alloc = allocate(boot, 1e16)
    truth = 0.5 + 250 * 1e16 ** -0.2
    assert alloc.params_opt is None and alloc.params_opt_ci is None
    assert alloc.predicted == pytest.approx(truth, rel=0.02)
    assert alloc.predicted_pi[0] < truth < alloc.predicted_pi[1]
    with pytest.raises(GaitforecastError, match="cannot answer a compute budget"):
        allocate(fit_law(runs, "loss", "power-params"), 1e18)
    with pytest.raises(GaitforecastError, match="positive number of FLOPs"):
        allocate(boot, -3.0)


def test_frontier_is_monotone(chinchilla_boot):
    table = frontier(chinchilla_boot, CostModel.per_param_sample(6.0), n_points=6)
    assert len(table) == 6
    assert table["params_opt"].is_monotonic_increasing and table["samples_opt"].is_monotonic_increasing
    assert table["predicted"].is_monotonic_decreasing


def test_isoflop_cross_check_on_chinchilla():
    from gaitforecast.laws import prepare

    result = isoflop(prepare(chinchilla_runs(), "loss"))
    assert result is not None and result.exponent == pytest.approx(0.50, abs=0.03)  # Approach 2: a ~ 0.49-0.51
    assert "biased" in result.note and result.budgets["vertex_inside"].sum() >= 10
    spread = synthetic_runs("power-compute", {"E": 0.5, "A": 250.0, "k": 0.2}, n_configs=30, seed=0)
    assert isoflop(prepare(spread, "loss")) is None  # log-uniform runs: no iso-compute groups

"""Fitting: Epoch's Chinchilla numbers, the early-stopping trap, recovery of known laws, refusals."""

import numpy as np
import pandas as pd
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import LawFitter, bootstrap, diagnose, fit_law, get_form, prepare
from gaitforecast.laws.fit import objective, polish
from gaitforecast.laws.synthetic import synthetic_runs, theta_from_params
from laws_data import chinchilla_runs


@pytest.fixture(scope="module")
def chinchilla_law():
    return fit_law(chinchilla_runs(), "loss", "chinchilla")


def test_chinchilla_fit_matches_epoch(chinchilla_law):
    p = chinchilla_law.params
    assert chinchilla_law.n_runs == 240
    assert p["alpha"] == pytest.approx(0.347, abs=0.003)
    assert p["beta"] == pytest.approx(0.367, abs=0.003)
    assert p["E"] == pytest.approx(1.817, abs=0.005)
    assert p["A"] == pytest.approx(478, rel=0.05) and p["B"] == pytest.approx(2143, rel=0.05)
    assert chinchilla_law.converged and chinchilla_law.status == "converged"
    assert chinchilla_law.grad_rel < 1e-6
    assert chinchilla_law.objective == pytest.approx(1.0183e-3, rel=1e-3)  # Epoch's Huber sum
    assert chinchilla_law.starts_agreeing >= 2


def test_rescaled_search_escapes_the_early_stop_trap(chinchilla_law):
    """From Hoffmann's rounded values scipy's defaults stop at beta ~0.285; the rescaled polish does not."""
    form, data = chinchilla_law.form, chinchilla_law.data
    logx = {k: data.logx[k] for k in form.inputs}
    hoffmann = theta_from_params("chinchilla", {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28})
    theta, f, grad_rel = polish(form, hoffmann, logx, data.logy, 1e-3, bounds=form.bounds(data.logy))
    assert f == pytest.approx(1.0183e-3, rel=1e-3)
    assert theta[4] == pytest.approx(0.367, abs=0.003) and grad_rel < 1e-4
    f_start = objective(form, hoffmann, logx, data.logy, 1e-3)[0]
    assert f_start > 1.1 * f  # Hoffmann's published values fit this data visibly worse


def test_recovers_known_chinchilla_law():
    true = {"E": 1.5, "A": 300.0, "B": 800.0, "alpha": 0.35, "beta": 0.3}
    runs = synthetic_runs("chinchilla", true, n_configs=150, noise=0.003, seed=3)
    law = fit_law(runs, "loss", "chinchilla")
    assert law.converged
    assert law.params["alpha"] == pytest.approx(0.35, abs=0.03)
    assert law.params["beta"] == pytest.approx(0.3, abs=0.03)
    assert law.params["E"] == pytest.approx(1.5, rel=0.03)
    fitted = law.predict(params=runs["params"], samples=runs["samples"])
    assert np.median(np.abs(fitted / runs["loss"] - 1)) < 0.004


@pytest.mark.parametrize("law,true", [
    ("power-compute", {"E": 0.5, "A": 250.0, "k": 0.2}),
    ("power-params", {"E": 2.0, "A": 40.0, "k": 0.3}),
    ("power-data", {"E": 1.0, "A": 90.0, "k": 0.25}),
])
def test_recovers_single_axis_laws(law, true):
    runs = synthetic_runs(law, true, n_configs=60, noise=0.005, seed=1)
    fitted = fit_law(runs, "loss", law)
    assert fitted.converged
    for name, value in true.items():
        assert fitted.params[name] == pytest.approx(value, rel=0.15), name
    assert fitted.params["k"] == pytest.approx(true["k"], abs=0.02)


def test_accuracy_metric_is_fitted_as_error_and_predicted_as_accuracy():
    true = {"E": 0.05, "k": 0.9, "C_mid": 1e14}
    runs = synthetic_runs("sigmoid-compute", true, n_configs=60, noise=0.01, seed=2,
                          metric="synth-casiab.rank1_mean")
    law = fit_law(runs, "synth-casiab.rank1_mean", "sigmoid-compute")
    assert law.fitted_as == "error = 1 - synth-casiab.rank1_mean"
    assert law.params["E"] == pytest.approx(0.05, rel=0.1)
    assert law.params["k"] == pytest.approx(0.9, rel=0.1)
    assert np.log(law.params["C_mid"]) == pytest.approx(np.log(1e14), abs=0.3)
    acc = law.predict(flops=[1e20])
    assert acc[0] == pytest.approx(0.95, abs=0.01)  # accuracy units: 1 - floor at huge compute


def test_accuracy_is_fitted_as_negative_log_by_chinchilla():
    true = {"E": 0.3, "A": 400.0, "B": 900.0, "alpha": 0.4, "beta": 0.35}
    runs = synthetic_runs("chinchilla", true, n_configs=60, noise=0.01, seed=3, metric="synth-casiab.rank1_mean")
    acc = runs["synth-casiab.rank1_mean"].to_numpy()
    assert acc.min() > 0.0 and acc.max() < np.exp(-0.3)  # the table holds accuracies below exp(-E)
    law = fit_law(runs, "synth-casiab.rank1_mean", "chinchilla")
    assert law.fitted_as == "-ln synth-casiab.rank1_mean" and law.data.target == "neglog"
    for name in ("alpha", "beta"):
        assert law.params[name] == pytest.approx(true[name], abs=0.03), name
    assert law.params["E"] == pytest.approx(0.3, rel=0.05)
    truth = np.exp(-(0.3 + 400.0 / 1e8 ** 0.4 + 900.0 / 1e9 ** 0.35))  # accuracy = exp(-law), at the largest run
    assert law.predict(params=[1e8], samples=[1e9])[0] == pytest.approx(truth, abs=0.003)
    # the same prepared data refitted by the sigmoid are converted to its error target and back
    data, kept = law.data.retarget("error"), np.maximum(acc, 1e-4)  # accuracies below 1e-4 are clipped
    assert law.data.clipped == (acc < 1e-4).sum() > 0
    assert data.y == pytest.approx(1.0 - kept) and data.to_metric_units(data.y) == pytest.approx(kept)
    assert data.retarget("neglog").y == pytest.approx(law.data.y)


def test_missing_floor_is_reported_at_bound_and_held():
    runs = synthetic_runs("power-compute", {"E": 1e-12, "A": 100.0, "k": 0.2}, n_configs=40, noise=0.01, seed=4)
    law = fit_law(runs, "loss", "power-compute")
    assert "log_E" in law.at_bound and "E held at" in law.status
    assert list(law.fixed) == ["E"] and "lower bound" in law.fixed_why["E"]
    assert law.params["k"] == pytest.approx(0.2, abs=0.01)  # the rest recovered with E held
    assert any("E held at" in w for w in diagnose(law)["warnings"])
    boot = bootstrap(law, n_resamples=100, seed=0)
    assert np.ptp(boot.param_samples()["E"]) == 0.0  # held in every resample too


def test_refuses_too_few_runs():
    runs = synthetic_runs("chinchilla", {"E": 1.5, "A": 300.0, "B": 800.0, "alpha": 0.35, "beta": 0.3},
                          n_configs=6, seed=0)
    with pytest.raises(GaitforecastError, match="needs at least 7 distinct runs; got 6"):
        fit_law(runs, "loss", "chinchilla")


def test_seeds_of_one_config_count_once():
    runs = synthetic_runs("power-compute", {"E": 0.5, "A": 250.0, "k": 0.2}, n_configs=4, seeds=3, seed=0)
    assert len(runs) == 12
    with pytest.raises(GaitforecastError, match="got 4"):
        fit_law(runs, "loss", "power-compute")


def test_bad_inputs_name_the_problem():
    runs = synthetic_runs("power-compute", {"E": 0.5, "A": 250.0, "k": 0.2}, n_configs=10, seed=0)
    with pytest.raises(GaitforecastError, match="unknown metric 'acc'.*loss"):
        prepare(runs, "acc")
    with pytest.raises(GaitforecastError, match="no finished runs"):
        prepare(runs.iloc[:0], "loss")
    bad = runs.copy()
    bad.loc[2, "params"] = -1.0
    with pytest.raises(GaitforecastError, match="non-positive params.*synthetic-2"):
        prepare(bad, "loss", ("params",))
    bad = runs.copy()
    bad.loc[1, "loss"] = np.inf
    with pytest.raises(GaitforecastError, match="infinite loss"):
        prepare(bad, "loss")
    bad = runs.copy()
    bad.loc[0, "loss"] = 0.0
    with pytest.raises(GaitforecastError, match="non-positive loss"):
        prepare(bad, "loss")
    acc = runs.rename(columns={"loss": "synth-grew.rank1"})
    acc.loc[0, "synth-grew.rank1"] = 1.5
    with pytest.raises(GaitforecastError, match=r"outside \[0, 1\]"):
        prepare(acc, "synth-grew.rank1")
    with pytest.raises(GaitforecastError, match="unknown law 'kaplan'"):
        get_form("kaplan")
    with pytest.raises(GaitforecastError, match="huber delta must be positive"):
        LawFitter(law="power-compute", huber_delta=0.0).fit(runs, "loss")


def test_runs_without_the_metric_are_left_out_with_a_warning():
    runs = synthetic_runs("power-compute", {"E": 0.5, "A": 250.0, "k": 0.2}, n_configs=20, seed=0)
    runs.loc[:4, "loss"] = np.nan
    law = fit_law(runs, "loss", "power-compute")
    assert law.n_runs == 15
    assert any("5 run(s) without a value" in w for w in diagnose(law)["warnings"])


def test_predict_needs_the_law_inputs(chinchilla_law):
    with pytest.raises(GaitforecastError, match="needs samples"):
        chinchilla_law.predict(params=1e9)
    value = chinchilla_law.predict(params=[1e9, 1e10], samples=[2e10, 2e11])
    assert value.shape == (2,) and value[0] > value[1] > chinchilla_law.params["E"]
    assert isinstance(pd.Series(chinchilla_law.to_dict()["params"]).sum(), float)


def test_exponent_pushed_past_its_bound_is_held_and_the_rest_recovered():
    true = {"E": 1.5, "A": 1e30, "B": 800.0, "alpha": 6.0, "beta": 0.3}  # alpha beyond the search's bound of 4
    runs = synthetic_runs("chinchilla", true, n_configs=40, noise=0.01, seed=0, params_range=(1e4, 1e6))
    law = fit_law(runs, "loss", "chinchilla")
    assert law.fixed == {"alpha": 4.0} and "upper bound" in law.fixed_why["alpha"]
    assert law.to_dict()["fixed"] == {"alpha": 4.0}
    assert law.params["beta"] == pytest.approx(0.3, abs=0.01)
    assert law.params["E"] == pytest.approx(1.5, rel=0.05)
    boot = bootstrap(law, n_resamples=100, seed=0)
    assert boot.param_ci()["alpha"] == [4.0, 4.0]


def test_lmfit_point_fit_and_vectorised_solver_agree_on_chinchilla():
    from gaitforecast.laws.fit import lmfit_refit, refine_batch

    law = fit_law(chinchilla_runs(), "loss", "chinchilla")
    form, data = law.form, law.data
    logx = {k: data.logx[k] for k in form.inputs}
    start = law.theta + np.array([0.3, -0.3, 0.05, 0.02, -0.02])
    vec, _, _ = refine_batch(form, start[None, :], logx, data.logy, 1e-3, bounds=form.bounds(data.logy))
    lm = lmfit_refit(form, data, start, 1e-3)
    for theta in (vec[0], lm):
        got = form.params(theta)
        for name in ("E", "A", "B", "alpha", "beta"):
            assert float(got[name]) == pytest.approx(law.params[name], rel=1e-3), name
    assert law.params["alpha"] == pytest.approx(0.347, abs=0.003)  # Epoch AI's refit of Chinchilla


def test_a_flat_profile_holds_the_exponent_the_runs_do_not_inform():
    # no dependence on N at all: E and A/N^alpha trade off, alpha's profile is flat down to its bound
    runs = synthetic_runs("chinchilla", {"E": 1.5, "A": 1e-9, "B": 800.0, "alpha": 0.3, "beta": 0.3},
                          n_configs=40, noise=0.01, seed=0)
    law = fit_law(runs, "loss", "chinchilla")
    assert "alpha" in law.fixed and "profile interval reaches its lower bound" in law.fixed_why["alpha"]
    assert law.params["beta"] == pytest.approx(0.3, abs=0.01)
    # the same law on runs that do inform alpha holds nothing
    runs = synthetic_runs("chinchilla", {"E": 1.5, "A": 300.0, "B": 800.0, "alpha": 0.35, "beta": 0.3},
                          n_configs=40, noise=0.01, seed=0)
    assert fit_law(runs, "loss", "chinchilla").fixed == {}


def test_outlying_runs_that_move_the_forecast_are_reported():
    from gaitforecast.laws.diagnostics import influential_runs

    raw = chinchilla_runs(drop_highest=0)
    worst = set(raw.loc[raw["loss"].nlargest(5).index, "id"])
    moved = influential_runs(fit_law(raw, "loss", "chinchilla"))
    assert moved is not None and worst <= set(moved["ids"]) and moved["shift_log"] > 0.01
    assert moved["params_without"]["beta"] == pytest.approx(0.37, abs=0.02)  # Epoch's fit without them
    law = fit_law(chinchilla_runs(), "loss", "chinchilla")
    assert influential_runs(law) is None
    warnings = diagnose(law)["warnings"]
    assert any(w.startswith("seed noise unknown") for w in warnings)  # one run per configuration


def test_engine_runs_with_one_blas_thread(monkeypatch):
    import sys

    import threadpoolctl

    bs = sys.modules["gaitforecast.laws.bootstrap"]  # the package's `bootstrap` name is the function

    seen = []
    real = bs.refine_batch

    def spy(*args, **kwargs):
        seen.append({d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"})
        return real(*args, **kwargs)

    monkeypatch.setattr(bs, "refine_batch", spy)
    bootstrap(fit_law(chinchilla_runs(), "loss", "chinchilla"), n_resamples=20, seed=0)
    assert seen and all(s == {1} for s in seen)  # the bootstrap and the calibration rollouts


def test_engine_reports_stages_counts_and_an_eta_to_a_progress_hook():
    from gaitforecast.laws import progress

    seen: list[progress.Progress] = []
    with progress.reporting(seen.append, every=0.0):  # every count, unthrottled
        boot = bootstrap(fit_law(chinchilla_runs(), "loss", "chinchilla"), n_resamples=40, seed=0)
        boot.predict(params=[1e11], samples=[1e12])  # beyond the runs: the calibration rollouts run now
    assert seen[0].describe() == "fitting chinchilla to 240 runs"
    boots = [p for p in seen if p.stages[0].message == "bootstrapping chinchilla on 240 runs"]
    counts = [p.current.done for p in boots]
    assert counts[0] == 0 and counts[-1] == 40 and counts == sorted(counts)  # resamples refitted, up to all
    assert boots[-1].describe() == "bootstrapping chinchilla on 240 runs: 40 of 40 resamples"
    midway = [p for p in boots if 0 < p.current.done < 40]
    assert midway and all(p.eta_s is not None and p.fraction == p.current.done / 40 for p in midway)
    assert midway[0].describe().endswith(" s left")
    # the rollouts are one counted stage; each rollout's bootstrap reports beneath it and moves the whole
    nested = [p for p in seen if len(p.stages) == 2 and p.current.total]
    assert {p.stages[0].message for p in nested} == {"calibrating chinchilla for extrapolation"}
    for p in nested:
        outer, inner = p.stages
        assert p.fraction == pytest.approx((outer.done + inner.done / inner.total) / 6)
    assert seen[-1].describe() == "calibrating chinchilla for extrapolation: 6 of 6 rollouts"
    assert seen[-1].fraction == 1.0 and seen[-1].eta_s == 0.0


def test_progress_counts_are_throttled_but_stages_and_totals_always_arrive():
    from gaitforecast.laws import progress

    seen: list[progress.Progress] = []
    with progress.reporting(seen.append, every=3600.0):
        bootstrap(fit_law(chinchilla_runs(), "loss", "chinchilla"), n_resamples=40, seed=0)
    assert [(p.current.message, p.current.done) for p in seen] == [
        ("fitting chinchilla to 240 runs", 0), ("bootstrapping chinchilla on 240 runs", 0),
        ("bootstrapping chinchilla on 240 runs", 40)]
    progress.step("nobody listens")  # without a hook a step is a no-op
    assert list(progress.over([1, 2], "nobody", unit="items")) == [1, 2]

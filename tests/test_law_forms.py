"""Every law form in the registry, through the same checks: the Jacobian it returns is the derivative of its
log-prediction, ``theta`` inverts ``params``, and what it declares (budget, allocation, accuracy only) is what the
engine does with it. A new form added to ``laws.forms.FORMS`` is checked here without a new test."""

from __future__ import annotations

import numpy as np
import pytest

from gaitforecast.laws import prepare
from gaitforecast.laws.backtest import candidate_laws
from gaitforecast.laws.forms import FORM_NAMES, FORMS
from gaitforecast.laws.synthetic import synthetic_runs

RNG = np.random.default_rng(7)
LOGX = {"params": np.log(np.geomspace(1e5, 1e9, 9)), "samples": np.log(np.geomspace(1e7, 1e11, 9))[::-1],
        "flops": np.log(np.geomspace(1e13, 1e21, 9))}


def _theta(form) -> np.ndarray:
    """A point inside the form's bounds (mid-box, clipped to a sane range), jittered."""
    box = np.array(form.bounds(np.log(np.full(3, 0.5))), dtype=float)
    mid = np.clip(box.mean(axis=1), -3.0, 3.0)
    return mid + RNG.uniform(-0.1, 0.1, len(mid))


@pytest.mark.parametrize("name", FORM_NAMES)
def test_jacobian_matches_finite_differences(name):
    form = FORMS[name]
    theta = _theta(form)
    pred, jac = form.log_predict(theta, LOGX)
    assert pred.shape == (9,) and jac.shape == (9, form.n_theta) and np.isfinite(jac).all()
    step = 1e-6
    for i in range(form.n_theta):
        up, down = theta.copy(), theta.copy()
        up[i] += step
        down[i] -= step
        numeric = (form.log_predict(up, LOGX)[0] - form.log_predict(down, LOGX)[0]) / (2 * step)
        np.testing.assert_allclose(jac[:, i], numeric, rtol=1e-5, atol=1e-7, err_msg=f"{name} d/d{i}")
    batch = np.stack([theta, theta + 0.01])  # vectorised over leading axes, as the bootstrap uses it
    assert form.log_predict(batch, LOGX)[0].shape == (2, 9)


@pytest.mark.parametrize("name", FORM_NAMES)
def test_theta_inverts_params_and_names_map_back(name):
    form = FORMS[name]
    theta = _theta(form)
    params = {k: float(v) for k, v in form.params(theta).items()}
    assert set(params) == set(form.param_names)
    np.testing.assert_allclose(form.theta(params), theta, rtol=1e-10, atol=1e-12)
    assert {form.param_of(t) for t in form.theta_names()} == set(form.param_names)
    assert set(form.exponent_names) <= set(form.param_names)


def test_declared_capabilities_drive_the_engine():
    assert [n for n, f in FORMS.items() if f.allocates] == ["chinchilla"]
    assert {n for n, f in FORMS.items() if f.answers_budget} == {"chinchilla", "power-compute", "sigmoid-compute"}
    assert [n for n, f in FORMS.items() if f.accuracy_only] == ["sigmoid-compute"]
    truth = {"E": 0.2, "A": 5.0, "B": 20.0, "alpha": 0.3, "beta": 0.3}
    loss = prepare(synthetic_runs("chinchilla", truth, n_configs=12, seed=1, metric="loss"), "loss", ())
    acc = prepare(synthetic_runs("chinchilla", truth, n_configs=12, seed=1, metric="rank1"), "rank1", ())
    assert "sigmoid-compute" not in candidate_laws(loss)  # an accuracy-only form is never offered for a loss
    assert "sigmoid-compute" in candidate_laws(acc) and len(candidate_laws(acc)) == len(FORMS)

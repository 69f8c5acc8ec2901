"""Two families on known Chinchilla laws: their exponents and the difference in the data exponent, with intervals."""

import numpy as np
import pandas as pd
import pytest

from gaitforecast.laws import compare
from gaitforecast.laws.synthetic import synthetic_runs

# fam-a has more runs, so it is the first compared architecture: beta_difference is beta(fam-a) - beta(fam-b)
SLOW = {"E": 0.5, "A": 60.0, "B": 80.0, "alpha": 0.35, "beta": 0.30}
FAST = {"E": 0.5, "A": 60.0, "B": 2400.0, "alpha": 0.35, "beta": 0.55}  # B scaled so the data term is seen


def two_families(truth_b: dict) -> pd.DataFrame:
    """30 runs of fam-a on SLOW and 28 of fam-b on ``truth_b`` (1 % noise, params 1e5-1e8, samples 1e6-1e9)."""
    a = synthetic_runs("chinchilla", SLOW, n_configs=30, noise=0.01, seed=1, arch="fam-a")
    b = synthetic_runs("chinchilla", truth_b, n_configs=28, noise=0.01, seed=2, arch="fam-b")
    return pd.concat([a, b], ignore_index=True)


@pytest.fixture(scope="module")
def differing():
    return compare(two_families(FAST), "loss", law="chinchilla", n_resamples=100)


@pytest.fixture(scope="module")
def equal():
    return compare(two_families(SLOW), "loss", law="chinchilla", n_resamples=100)


def test_exponent_intervals_contain_the_true_exponents(differing):
    got = differing.exponents
    assert got.archs == ("fam-a", "fam-b") and got.level == 0.95 and got.notes == []
    for arch, truth in (("fam-a", SLOW), ("fam-b", FAST)):
        for name in ("alpha", "beta"):
            value, lo, hi = got.exponents[arch][name]
            assert lo < truth[name] < hi, (arch, name, got.exponents[arch][name])
            assert lo < value < hi and hi - lo < 0.15  # identified: narrow enough to tell 0.30 from 0.55
    assert got.exponents["fam-a"]["beta"][0] == pytest.approx(0.30, abs=0.02)
    assert got.exponents["fam-b"]["beta"][0] == pytest.approx(0.55, abs=0.02)


def test_beta_difference_excludes_zero_with_the_right_sign(differing):
    got = differing.exponents
    value, lo, hi = got.beta_difference
    assert value == pytest.approx(0.30 - 0.55, abs=0.03) and lo < -0.25 < hi and hi < 0
    assert got.excludes_zero and got.scales_better == "fam-b"
    assert got.verdict().startswith("fam-b scales better with data (beta 0.547 for fam-b against 0.298 for fam-a")
    assert got.verdict().endswith("which excludes zero)")
    out = differing.to_dict()
    assert out["law"] == "chinchilla" and out["beta_difference_of"] == ["fam-a", "fam-b"]
    assert out["beta_difference"] == got.beta_difference and out["exponents_notes"] == []


def test_equal_data_exponents_give_an_interval_containing_zero(equal):
    got = equal.exponents
    value, lo, hi = got.beta_difference
    assert lo < 0 < hi and abs(value) < 0.01 and hi - lo < 0.1
    for arch in ("fam-a", "fam-b"):
        _, b_lo, b_hi = got.exponents[arch]["beta"]
        assert b_lo < 0.30 < b_hi
    assert not got.excludes_zero and got.scales_better is None
    assert got.verdict().startswith("neither family scales better with data with 95 % confidence")


def test_the_two_families_are_resampled_independently(equal):
    """One seed would draw the same resample weights for two grids of equal size; seed + i does not."""
    a, b = (equal.exponents.exponents[arch]["beta"] for arch in ("fam-a", "fam-b"))
    assert a != b
    again = compare(two_families(SLOW), "loss", law="chinchilla", n_resamples=100)
    assert again.exponents.beta_difference == equal.exponents.beta_difference  # seeded: reproducible


def test_a_law_without_exponents_says_why():
    runs = two_families(FAST)
    out = compare(runs, "loss", law="power-compute", n_resamples=50).to_dict()
    assert out["exponents"] is None and out["beta_difference"] is None and out["beta_difference_of"] is None
    note, = out["exponents_notes"]
    assert note.startswith("no exponents or beta difference: the power-compute law has no separate")
    assert "--law chinchilla" in note
    few = pd.concat([runs[runs["arch"] == "fam-a"], runs[runs["arch"] == "fam-b"].iloc[:5]], ignore_index=True)
    fallback = compare(few, "loss", law="power-compute", n_resamples=50)
    note, = fallback.to_dict()["exponents_notes"]
    assert note.endswith("needs more runs than the store has (fam-b: 5 distinct runs, 7 needed)")
    assert len(fallback.rows) == 8 and np.isfinite(fallback.rows["diff"]).all()  # the metric comparison stands


def test_a_held_data_exponent_has_no_interval_and_no_difference():
    """A beta the runs do not identify is held by the fit, so its draws do not vary: no interval is claimed."""
    from dataclasses import replace

    from gaitforecast.laws import bootstrap, compare_exponents, fit_law

    free = bootstrap(fit_law(two_families(FAST).query("arch == 'fam-b'"), "loss", "chinchilla"), n_resamples=30)
    beta = free.law.form.theta_names().index("beta")
    thetas = free.thetas.copy()
    thetas[:, beta] = free.law.theta[beta]
    held = replace(free, law=replace(free.law, held={beta: "flat profile"}), thetas=thetas)
    got = compare_exponents({"fam-a": held, "fam-b": free})
    assert got.exponents["fam-a"]["beta"] == [pytest.approx(0.55, abs=0.02), None, None]
    assert got.exponents["fam-a"]["alpha"][1] is not None and got.beta_difference is None
    assert not got.excludes_zero and got.scales_better is None
    assert got.notes == [f"beta of fam-a is held at {free.law.params['beta']:.3g}: its runs do not identify it, so "
                         "it has no interval"]
    assert got.verdict() == "the data exponents cannot be compared: " + got.notes[0]


# GaitPT's runs of the default profile (2026-12-08): rank-1 grows with data but not with width at these step counts,
# so Chinchilla's bootstrap cannot refit them (most refits fail to converge).
WIDTH_DOES_NOT_PAY = [  # params, samples, flops, seed, rank-1
    (285080, 15360, 4.2048258048e12, 0, 0.0887), (73004, 30720, 2.509553664e12, 0, 0.1694),
    (156906, 15360, 2.39869181952e12, 0, 0.0958), (285080, 7680, 2.1024129024e12, 0, 0.0683),
    (73004, 15360, 1.254776832e12, 0, 0.1138), (156906, 7680, 1.19934590976e12, 0, 0.0606),
    (285080, 3840, 1.0512064512e12, 0, 0.0546), (73004, 7680, 6.27388416e11, 0, 0.0642),
    (156906, 3840, 5.9967295488e11, 1, 0.0606), (156906, 3840, 5.9967295488e11, 0, 0.0522),
    (73004, 3840, 3.13694208e11, 1, 0.0418), (73004, 3840, 3.13694208e11, 0, 0.0571),
]


def test_compare_falls_back_to_power_compute_when_one_family_cannot_be_bootstrapped():
    """The default form is chinchilla when both families have the runs; when one family's runs cannot be refitted
    by its bootstrap, compare (the use case behind the CLI and the dashboard) compares both with power-compute and
    says which family and why, instead of failing."""
    from gaitforecast import forecast

    rows = [dict(arch="gaitpt", params=p, samples=d, flops=c, seed=s, width=int(p), metric=m)
            for p, d, c, s, m in WIDTH_DOES_NOT_PAY]
    pt = pd.DataFrame(rows).rename(columns={"metric": "rank1"})
    gf = synthetic_runs("power-compute", {"E": 0.001, "A": 40.0, "k": 0.12}, n_configs=20, noise=0.01, seed=3,
                        arch="gf")
    gf = gf.assign(rank1=np.exp(-gf["loss"])).drop(columns=["loss"])
    runs = pd.concat([gf, pt], ignore_index=True)
    with pytest.raises(Exception, match="gaitpt: only .* bootstrap refits converged"):
        compare(runs, "rank1", law="chinchilla", n_resamples=200)
    got = forecast.compare(runs, forecast.Request(metric="rank1", resamples=200))
    assert got.law == "power-compute" and got.exponents is None
    assert "could not be bootstrapped on gaitpt" in got.exponents_note
    assert "compared with power-compute instead" in got.exponents_note
    assert len(got.rows) == 8 and got.to_dict()["exponents_notes"] == [got.exponents_note]

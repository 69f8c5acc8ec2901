"""Property-based tests (hypothesis) of the law fitters and of run-table import.

* Law fitters: any valid runs table (sizes over six decades, loss or accuracy metrics, repeated configurations,
  degenerate axes, too few runs, perfect or chance accuracy) never crashes. Every form either fits with finite
  parameters and finite forecasts, or refuses with a GaitforecastError; bootstrap, allocate and backtest likewise.
* Bad rows: NaN / infinite / non-positive sizes and infinite metrics are refused naming exactly the bad runs (law
  fitting: run ids) or the bad rows (import: 1-based data rows of the CSV); repeated rows are refused with the rows
  that repeat; a refused import writes nothing to the store (its file stays byte-identical).
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from gaitforecast.errors import GaitforecastError
from gaitforecast.laws import FORM_NAMES, allocate, backtest, bootstrap, fit_law
from gaitforecast.store import RunStore
from gaitforecast.store.exchange import prepare_import, read_table
from test_store import _digest

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LOSS, ACC = "loss", "synth-casiab.rank1_mean"


@st.composite
def run_tables(draw) -> tuple[pd.DataFrame, str]:
    """A valid runs table: positive finite sizes, a loss (> 0) or an accuracy in [0, 1], maybe seeds of a config."""
    n_configs = draw(st.integers(1, 14))
    log_n = st.floats(math.log(1e3), math.log(1e9))
    log_d = st.floats(math.log(1e2), math.log(1e10))
    axes = draw(st.sampled_from(["both", "fixed-params", "fixed-samples"]))
    ln_n = draw(st.lists(log_n, min_size=n_configs, max_size=n_configs))
    ln_d = draw(st.lists(log_d, min_size=n_configs, max_size=n_configs))
    if axes == "fixed-params":
        ln_n = [ln_n[0]] * n_configs
    elif axes == "fixed-samples":
        ln_d = [ln_d[0]] * n_configs
    seeds = draw(st.integers(1, 3))
    metric = draw(st.sampled_from([LOSS, ACC]))
    shape = draw(st.sampled_from(["law", "random", "constant"]))
    rows = []
    for i, (a, b) in enumerate(zip(ln_n, ln_d)):
        for s in range(seeds):
            if shape == "law":  # a Chinchilla-like loss with noise; accuracy = exp(-loss)
                err = 0.05 + 30 * math.exp(-0.3 * a) + 50 * math.exp(-0.3 * b)
                value = err * math.exp(draw(st.floats(-0.2, 0.2)))
            elif shape == "random":
                value = draw(st.floats(1e-3, 1e3) if metric == LOSS else st.floats(0.0, 1.0))
            else:
                value = 0.5
            if metric == ACC:
                value = min(1.0, max(0.0, math.exp(-value) if shape == "law" else value))
            rows.append({"id": f"r{i}s{s}", "arch": "gaitpt", "seed": s, "params": math.exp(a),
                         "samples": math.exp(b), "flops": 6 * math.exp(a + b), metric: value})
    table = pd.DataFrame(rows)
    if draw(st.booleans()):  # gaps a store can hold: no arch (NULL), samples unknown (laws in compute still fit)
        for column in ("arch", "samples"):
            holes = draw(st.lists(st.integers(0, len(table) - 1), max_size=3))
            table.loc[holes, column] = None
    return table, metric


def _finite(*values) -> bool:
    return all(np.isfinite(np.asarray(v, dtype=float)).all() for v in values)


@SETTINGS
@given(run_tables())
def test_law_fitters_never_crash_on_valid_tables(table):
    runs, metric = table
    top = float(runs["flops"].max())
    for law in FORM_NAMES:
        try:
            fit = fit_law(runs, metric, law=law)
        except GaitforecastError as exc:
            assert str(exc)  # a refusal says why
            continue
        assert _finite(list(fit.params.values()), fit.objective, fit.residual_sd), (law, fit.params)
        assert fit.n_runs == len(runs) and fit.status
        big = {"params": runs["params"].max() * 10, "samples": (runs["flops"] / runs["params"]).max(),
               "flops": top * 100}
        pred = fit.predict(**{k: big[k] for k in fit.form.inputs})
        assert _finite(pred), (law, fit.params, pred)
        if law not in ("chinchilla", "power-compute"):
            continue
        try:
            boot = bootstrap(fit, n_resamples=40, seed=1)
            alloc = allocate(boot, budget=top * 100)
        except GaitforecastError as exc:
            assert str(exc)
            continue
        assert _finite(boot.thetas) and boot.thetas.shape[0] == 40 and 0 <= boot.n_failed <= 40  # hard ones kept
        assert _finite(alloc.predicted, alloc.predicted_ci or [], alloc.predicted_pi or [])
        if alloc.params_opt is not None:
            assert _finite(alloc.params_opt, alloc.samples_opt, alloc.params_opt_ci)
            assert alloc.params_opt > 0 and alloc.samples_opt > 0


@SETTINGS
@given(run_tables(), st.sampled_from(["chinchilla", "power-compute"]))
def test_backtest_never_crashes_on_valid_tables(table, law):
    runs, metric = table
    try:
        bt = backtest(runs, metric, law=law, n_resamples=40)
    except GaitforecastError as exc:
        assert str(exc)
        return
    assert bt.n_fit + bt.n_test == len(runs) and bt.n_test > 0
    assert _finite(bt.median_rel_error, bt.mean_rel_error, bt.bias, bt.coverage, bt.rows["predicted"])


BAD_SIZES = {"nan": float("nan"), "inf": float("inf"), "negative": -5.0, "zero": 0.0}


@SETTINGS
@given(run_tables(), st.data())
def test_fitting_refuses_bad_sizes_naming_the_runs(table, data):
    runs, metric = table
    runs = runs.assign(arch="gaitpt", samples=runs["flops"] / (6 * runs["params"]))  # no gaps but the injected ones
    bad = sorted(data.draw(st.sets(st.integers(0, len(runs) - 1), min_size=1, max_size=min(5, len(runs)))))
    column = data.draw(st.sampled_from(["params", "samples", "flops", "metric"]))
    for row in bad:
        if column == "metric":
            runs.loc[row, metric] = data.draw(st.sampled_from([np.inf, -np.inf]))
        else:
            runs.loc[row, column] = BAD_SIZES[data.draw(st.sampled_from(list(BAD_SIZES)))]
    # A samples or flops column missing everywhere is derived from the other two (C = 6 N D): not an error.
    assume(not (column in ("samples", "flops") and runs[column].isna().all()))
    law = {"params": "power-params", "samples": "power-data"}.get(column, "power-compute")
    with pytest.raises(GaitforecastError) as err:
        fit_law(runs, metric, law=law)
    message = str(err.value)
    named = set(re.findall(r"r\d+s\d+", message))
    assert named == {runs.loc[r, "id"] for r in bad}, message


@st.composite
def import_tables(draw) -> pd.DataFrame:
    """A valid external table: distinct rows, positive sizes, optional flops, a metric that may have gaps."""
    n = draw(st.integers(1, 15))
    params = draw(st.lists(st.floats(1.0, 1e12), min_size=n, max_size=n, unique=True))
    table = {"params": params,
             "samples": draw(st.lists(st.floats(1.0, 1e12), min_size=n, max_size=n))}
    if draw(st.booleans()):
        table["flops"] = draw(st.lists(st.floats(1.0, 1e25), min_size=n, max_size=n))
    table["loss"] = draw(st.lists(st.one_of(st.floats(-10.0, 10.0), st.none()), min_size=n, max_size=n))
    return pd.DataFrame(table)


CORRUPT = {"nan": ("params", "", "params is missing"), "inf": ("samples", "inf", "samples is infinite"),
           "negative": ("params", "-3", "params is not positive"), "zero": ("samples", "0", "samples is not positive"),
           "text": ("params", "abc", "params is not a number"),
           "metric-inf": ("loss", "inf", "metric loss is infinite")}


def _store_with_one_import(folder: Path) -> RunStore:
    store = RunStore(folder / "s.duckdb")
    store.import_runs(pd.DataFrame({"params": [7.0], "samples": [9.0], "loss": [1.0]}), source="seed.csv")
    return store


@SETTINGS
@given(import_tables())
def test_valid_imports_round_trip_and_reimporting_adds_nothing(table):
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "runs.csv"
        table.to_csv(csv, index=False)
        store = RunStore(Path(tmp) / "s.duckdb")
        assert store.import_runs(read_table(csv), source=csv.name) == len(table)
        assert store.import_runs(read_table(csv), source=csv.name) == len(table)
        runs = store.runs().sort_values("params", ignore_index=True)
        want = table.sort_values("params", ignore_index=True)
        assert len(runs) == len(table) and runs["id"].is_unique
        np.testing.assert_allclose(runs["params"], want["params"], rtol=1e-12)
        flops = want["flops"] if "flops" in want else 6 * want["params"] * want["samples"]
        np.testing.assert_allclose(runs["flops"], flops, rtol=1e-12)
        assert runs["flops_estimated"].tolist() == [("flops" not in want)] * len(want)
        if want["loss"].notna().any():  # an all-empty column is not a metric
            np.testing.assert_allclose(runs["loss"], want["loss"].astype(float), rtol=1e-12)  # gaps stay gaps


def _listed_rows(message: str) -> set[int]:
    head = re.search(r"rows ([\d, ]+)", message)
    return {int(x) for x in head.group(1).split(",")} if head else set()


@SETTINGS
@given(import_tables(), st.data())
def test_bad_import_rows_are_named_and_nothing_is_written(table, data):
    raw = table.astype(object).where(table.notna(), "")
    bad = data.draw(st.dictionaries(st.integers(0, len(raw) - 1), st.sampled_from(list(CORRUPT)),
                                    min_size=1, max_size=min(6, len(raw))))
    for row, kind in bad.items():
        column, text, _ = CORRUPT[kind]
        raw.loc[row, column] = text
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "runs.csv"
        raw.to_csv(csv, index=False)
        store = _store_with_one_import(Path(tmp))
        before = _digest(store.path)
        with pytest.raises(GaitforecastError) as err:
            store.import_runs(read_table(csv), source=csv.name)
        message = str(err.value)
        assert _listed_rows(message) == {r + 1 for r in bad}, message  # data rows, 1-based
        for row, kind in bad.items():
            assert re.search(rf"row {row + 1}: [^;)]*{re.escape(CORRUPT[kind][2])}", message), (kind, message)
        assert "nothing was imported" in message
        assert _digest(store.path) == before and len(store.runs()) == 1


@SETTINGS
@given(import_tables(), st.data())
def test_repeated_import_rows_are_named_and_nothing_is_written(table, data):
    copies = data.draw(st.lists(st.integers(0, len(table) - 1), min_size=1, max_size=4))
    doubled = pd.concat([table, table.iloc[copies]], ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = _store_with_one_import(Path(tmp))
        before = _digest(store.path)
        with pytest.raises(GaitforecastError, match="repeat earlier rows") as err:
            store.import_runs(doubled, source="dup.csv")
        assert _listed_rows(str(err.value)) == set(range(len(table) + 1, len(doubled) + 1))
        assert _digest(store.path) == before and len(store.runs()) == 1
    with pytest.raises(GaitforecastError, match="repeat earlier rows"):
        prepare_import(doubled, "dup.csv")

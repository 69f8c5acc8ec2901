"""Importing external run tables (all-or-nothing, row numbers in errors) and exporting runs with metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaitforecast.errors import GaitforecastError
from gaitforecast.store import RunStore
from gaitforecast.store.exchange import prepare_import, read_table

from laws_data import CHINCHILLA_CSV as CHINCHILLA
CHINCHILLA_MAP = {"params": "Model Size", "flops": "Training FLOP"}


def test_chinchilla_table_imports_245_runs_with_derived_samples_and_is_idempotent(tmp_path):
    store = RunStore(tmp_path / "s.duckdb")
    table = read_table(CHINCHILLA)
    assert store.import_runs(table, CHINCHILLA.name, CHINCHILLA_MAP, metrics=["loss"]) == 245
    assert store.import_runs(table, CHINCHILLA.name, CHINCHILLA_MAP, metrics=["loss"]) == 245
    runs = store.runs()
    assert len(runs) == 245 and runs["id"].is_unique
    assert set(runs["source"]) == {"import:chinchilla_epoch.csv"} and set(runs["status"]) == {"done"}
    assert not runs["flops_estimated"].any()
    np.testing.assert_allclose(runs["samples"], runs["flops"] / (6 * runs["params"]), rtol=1e-12)
    assert store.metric_names() == ["loss"]
    by_size = runs.set_index("params").sort_index()
    first = table.sort_values("Model Size").iloc[0]
    assert by_size["loss"].iloc[0] == pytest.approx(first["loss"], rel=1e-12)
    assert store.runs_records()[0]["config"]["derived"] == {"samples": "flops / (6 * params)"}


def test_missing_flops_are_estimated_as_6_n_d_and_recorded(tmp_path):
    table = pd.DataFrame({"params": [1e6, 2e6], "samples": [1e4, 3e4], "acc": [0.3, 0.4], "note": ["a", "b"]})
    plan = prepare_import(table, "mine.csv")
    assert plan.flops_estimated and plan.metrics == ["acc"] and plan.ignored_columns == ["note"]
    store = RunStore(tmp_path / "s.duckdb")
    assert store.write_import(plan) == 2
    runs = store.runs().sort_values("params")
    assert runs["flops"].tolist() == [6e10, 3.6e11] and runs["flops_estimated"].all()
    assert runs["acc"].tolist() == [0.3, 0.4] and runs["arch"].tolist() == ["imported"] * 2


def test_bad_rows_are_listed_by_row_number_and_nothing_is_imported(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "Model Size,samples,loss\n"
        "1e6,1000,2.5\n"   # row 1 fine
        "-5,1000,2.4\n"    # row 2 negative params
        ",1000,2.3\n"      # row 3 missing params
        "2e6,inf,2.2\n"    # row 4 infinite samples
        "3e6,1000,fast\n"  # row 5 metric not a number ("n/a" would read as missing)
        "4e6,0,2.0\n"      # row 6 zero samples
        "5e6,1000,\n"      # row 7 metric not measured: fine
    )
    store = RunStore(tmp_path / "s.duckdb")
    with store.writer() as w:
        w.upsert_run({"config": {"keep": 1}, "params": 1.0, "samples": 1.0, "status": "done"})
    with pytest.raises(GaitforecastError) as err:
        store.import_runs(read_table(path), path.name, {"params": "Model Size"})
    text = str(err.value)
    assert "5 of 7 rows" in text and "rows 2, 3, 4, 5, 6 " in text and "nothing was imported" in text
    assert "row 2: params is not positive" in text and "row 3: params is missing" in text
    assert "row 4: samples is infinite" in text and "row 5: metric loss is not a number" in text
    assert len(store.runs()) == 1


def test_repeated_rows_and_missing_columns_are_refused():
    table = pd.DataFrame({"params": [1.0, 2.0, 1.0], "samples": [5.0, 6.0, 5.0], "loss": [1.0, 2.0, 1.0]})
    with pytest.raises(GaitforecastError, match=r"rows 3 .*row 3: repeats row 1"):
        prepare_import(table, "dup.csv")
    with pytest.raises(GaitforecastError, match="needs a `params` column and a `samples` or `flops`"):
        prepare_import(table.drop(columns=["samples"]), "x.csv")
    with pytest.raises(GaitforecastError, match="names columns the table lacks"):
        prepare_import(table, "x.csv", {"params": "Model Size"})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_then_import_round_trip(tmp_path, suffix):
    source = RunStore(tmp_path / "a.duckdb")
    with source.writer() as w:
        for i in range(3):
            w.upsert_run({"config": {"i": i}, "arch": "gaitpt", "width": 8 << i, "seed": i, "params": 1e5 * (i + 1),
                          "samples": 2e4 * (i + 1), "flops": 3e12 * (i + 1), "status": "done",
                          "metrics": {"synth-casiab.rank1_mean": 0.1 * (i + 1), "loss": 3.0 - i}})
    out = tmp_path / f"runs{suffix}"
    assert source.export(out) == 3
    exported = read_table(out)
    assert {"id", "params", "samples", "flops", "loss", "synth-casiab.rank1_mean"} <= set(exported.columns)
    target = RunStore(tmp_path / "b.duckdb")
    assert target.import_runs(exported, out.name) == 3
    cols = ["arch", "width", "seed", "params", "samples", "flops", "loss", "synth-casiab.rank1_mean"]
    a = source.runs().sort_values("params")[cols].reset_index(drop=True)
    b = target.runs().sort_values("params")[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert target.metric_names() == ["loss", "synth-casiab.rank1_mean"]
    originals = sorted(r["config"]["original_id"] for r in target.runs_records())
    assert originals == sorted(source.done_ids())


_good = st.floats(min_value=1e-3, max_value=1e15, allow_nan=False)
_bad = st.sampled_from([0.0, -1.0, float("nan"), float("inf"), -float("inf")])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(_good, _good, st.floats(0, 1)), min_size=1, max_size=12, unique_by=lambda r: r[0]),
       bad=st.dictionaries(st.integers(0, 11), st.tuples(st.sampled_from(["params", "samples"]), _bad), max_size=4))
def test_random_tables_import_or_name_exactly_the_bad_rows(rows, bad):
    table = pd.DataFrame(rows, columns=["params", "samples", "acc"])
    bad = {i: v for i, v in bad.items() if i < len(table)}
    for i, (column, value) in bad.items():
        table.loc[i, column] = value
    if not bad:
        plan = prepare_import(table, "random.csv")
        assert len(plan.runs) == len(table)
        assert all(math.isfinite(r["flops"]) and r["flops"] > 0 for r in plan.runs)
        return
    with pytest.raises(GaitforecastError) as err:
        prepare_import(table, "random.csv")
    listed = str(err.value).split("rows ", 2)[2].split(" (")[0]
    assert listed == ", ".join(str(i + 1) for i in sorted(bad))

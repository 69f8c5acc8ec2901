"""Hostile input and hostile places (issue 15): each class refused with a clear error, nothing touched."""

from __future__ import annotations

import os
import stat
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaitforecast.store import RunStore
from test_cli_runs import gaitforecast


def _table(arch: str = "x", metric: str = "loss") -> pd.DataFrame:
    flops, params = np.logspace(12, 16, 12), np.logspace(5, 7, 12)
    return pd.DataFrame({"params": params, "flops": flops, "arch": arch, metric: 2 + 30 * flops ** -0.1})


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "s.duckdb"
    RunStore(path).import_runs(_table(), "t.csv")
    return path


def test_export_never_replaces_what_is_not_a_regular_file(store, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    res = gaitforecast("export", str(fifo), "--store", str(store), cwd=tmp_path)
    assert res.returncode == 2 and "it is a FIFO, not a regular file" in res.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    res = gaitforecast("export", "/dev/null", "--format", "csv", "--store", str(store), cwd=tmp_path)
    assert res.returncode == 2 and "it is a device" in res.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    assert gaitforecast("export", str(tmp_path / "link.csv"), "--store", str(store), cwd=tmp_path).returncode == 0
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text().startswith("id,")


def test_a_store_path_that_cannot_be_a_store_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.duckdb"
    os.mkfifo(fifo)
    (tmp_path / "dangling.duckdb").symlink_to(tmp_path / "nowhere")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    _table().to_csv(tmp_path / "t.csv", index=False)
    cases = {str(fifo): "is a FIFO", str(tmp_path / "dangling.duckdb"): "dangling symbolic link",
             str(tmp_path / "a"): "symbolic-link loop", "/dev/null": "is a device", str(tmp_path): "is a directory"}
    for path, words in cases.items():
        for command in (["runs"], ["fit"], ["import-runs", str(tmp_path / "t.csv")]):
            start = time.monotonic()
            res = gaitforecast(*command, "--store", path, cwd=tmp_path)
            assert res.returncode == 2 and words in res.stderr, (command, path, res.stderr)
            assert time.monotonic() - start < 10  # no hang on the FIFO, no 46 s recursion on the loop
    assert not os.path.exists("/dev/null.lock")


def test_markup_in_user_text_prints_as_text(tmp_path):
    path = tmp_path / "m.duckdb"
    csv = tmp_path / "m.csv"
    _table(arch="[/x]", metric="[/bold]").to_csv(csv, index=False)
    res = gaitforecast("import-runs", str(csv), "--store", str(path), "--metric", "[/bold]", "--kind",
                       "[/bold]=loss", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "metrics: [/bold]" in res.stderr
    for command in (["runs"], ["fit", "--metric", "[/bold]", "--law", "power-compute", "--resamples", "50"],
                    ["summary", "--metric", "[/bold]"]):
        res = gaitforecast(*command, "--store", str(path), cwd=tmp_path)
        assert res.returncode == 0, (command, res.stderr)
        assert "[/x]" in res.stderr or "[/bold]" in res.stderr
    res = gaitforecast("fit", "--store", str(tmp_path / "[/red]x.duckdb"), cwd=tmp_path)
    assert res.returncode == 2 and "[/red]x.duckdb" in res.stderr


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.sampled_from(list("[]/ab=_.:\\ ")), min_size=1, max_size=12))
def test_any_metric_name_gives_an_answer_or_exit_2_never_a_traceback(store, tmp_path, name):
    res = gaitforecast("fit", "--store", str(store), "--metric", name, "--resamples", "20", cwd=tmp_path)
    assert res.returncode in (0, 2) and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("args, words", [
    (["fit", "--seed", "-1"], "--seed"),
    (["backtest", "--seed", "-1"], "--seed"),
    (["predict", "--budget", "1"], "over three decades below the smallest fitted run"),
    (["predict", "--budget", "1e-300"], "over three decades below"),
    (["fit", "--metric", "created_at"], "'created_at' is a field of every run, not a metric"),
    (["fit", "--metric", "params"], "'params' is a field of every run, not a metric"),
])
def test_bad_values_are_refused_with_exit_2(store, tmp_path, args, words):
    res = gaitforecast(*args, "--store", str(store), cwd=tmp_path)
    assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_dashboard_is_local_by_default(tmp_path):
    import typer

    from gaitforecast.cli._common import app

    command = typer.main.get_command(app).commands["dashboard"]
    address = next(p for p in command.params if p.name == "address")
    assert address.default == "127.0.0.1"
    res = gaitforecast("dashboard", "--address", "999.1.1.1", "--store", str(tmp_path / "s.duckdb"), cwd=tmp_path)
    assert res.returncode == 2 and "not an IP address or a known host name" in res.stderr


@pytest.mark.parametrize("columns, rows, words", [
    (["params", "samples", "loss"], [[1e200, 1e200, 2.0]], "flops estimated as 6 x params x samples is inf"),
    (["params", "flops", "loss"], [[1e300, 1e-300, 2.0]], "samples derived as flops / (6 x params) is 0"),
    (["params", "samples", "seed", "loss"], [[1e6, 1e9, float("-inf"), 2.0]], "seed is not finite"),
    (["params", "samples", "seed", "loss"], [[1e6, 1e9, 1.5, 2.0]], "seed is not a whole number"),
    (["params", "samples", "width", "loss"], [[1e6, 1e9, 0, 2.0]], "width is outside 1..2147483647"),
])
def test_import_refuses_sizes_that_would_be_stored_wrong(tmp_path, columns, rows, words):
    csv = tmp_path / "t.csv"
    pd.DataFrame(rows, columns=columns).to_csv(csv, index=False)
    store = tmp_path / "s.duckdb"
    res = gaitforecast("import-runs", str(csv), "--store", str(store), cwd=tmp_path)
    assert res.returncode == 2 and words in res.stderr.replace("\n", "") and "row 1" in res.stderr, res.stderr
    assert not store.exists()


def test_import_refuses_a_repeated_header_name(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("params,samples,loss,loss\n1e6,1e9,2.0,3.0\n")
    res = gaitforecast("import-runs", str(csv), "--store", str(tmp_path / "s.duckdb"), cwd=tmp_path)
    assert res.returncode == 2 and "the header names 'loss' more than once" in res.stderr


@pytest.mark.parametrize("args, words", [
    (["--device", "tpu"], "--device 'tpu': use cpu or cuda"),
    (["--workers", "0"], "--workers must be between 1 and 1024"),
    (["--threads", "0"], "--threads must be between 1 and 1024"),
    (["--cache-dir", "FILE"], "is a file, not a folder"),
])
def test_execution_options_are_checked_before_anything_runs(tmp_path, args, words):
    (tmp_path / "FILE").write_text("x")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    store = tmp_path / "s.duckdb"
    res = gaitforecast("run-small", "--profile", "quick", "--store", str(store), *args, cwd=tmp_path)
    assert res.returncode == 2 and words in res.stderr, res.stderr
    assert not store.exists()


def test_mup_check_refuses_a_nan_learning_rate(tmp_path):
    res = gaitforecast("mup-check", "--lr", "nan", cwd=tmp_path)
    assert res.returncode == 2 and "--lr nan" in res.stderr


def _lying_npz(path, shape=(10_000_000, 17, 3)):
    import io
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros((10, 17, 3)))
    header["shape"] = shape
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(np.zeros((10, 17, 3)).tobytes())
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("seq.npy", buf.getvalue())


@pytest.mark.parametrize("case, words", [
    ("ids2d", "'ids' must be a 1-D array"),
    ("ids0d", "'ids' must be a 1-D array"),
    ("huge", "values beyond float32's range"),
    ("complex", "complex values (dtype complex64)"),
    ("liar", "declares shape (10000000, 17, 3) (4,080,000,000 bytes) but stores"),
])
def test_malformed_pose_files_are_refused_without_loading_them(tmp_path, case, words):
    seqs = np.random.default_rng(0).random((3, 40, 17, 3)).astype(np.float32)
    path = tmp_path / f"{case}.npz"
    if case == "ids2d":
        np.savez(path, sequences=seqs, ids=np.array([["a", "b", "c"]]))
    elif case == "ids0d":
        np.savez(path, sequences=seqs, ids=np.array("a"))
    elif case == "huge":
        np.savez(path, seq=seqs[0].astype(np.float64) * 1e300)
    elif case == "complex":
        np.savez(path, seq=seqs[0] + 1j)
    else:
        _lying_npz(path)
    res = gaitforecast("data-check", str(path), cwd=tmp_path)
    assert res.returncode == 2 and words in res.stderr.replace("\n", ""), res.stderr


def test_a_hand_edited_store_is_refused_with_its_name(store, tmp_path):
    import duckdb
    import shutil

    bad_json, dropped = tmp_path / "json.duckdb", tmp_path / "dropped.duckdb"
    shutil.copy(store, bad_json)
    shutil.copy(store, dropped)
    con = duckdb.connect(str(bad_json))
    con.execute("UPDATE runs SET config = '{not json' WHERE id = (SELECT min(id) FROM runs)")
    con.close()
    con = duckdb.connect(str(dropped))
    con.execute("ALTER TABLE runs DROP COLUMN wall_time_s")
    con.close()
    res = gaitforecast("runs", "--store", str(bad_json), "--json", cwd=tmp_path)
    assert res.returncode == 2 and str(bad_json) in res.stderr and "config is not valid JSON" in res.stderr
    before = dropped.read_bytes()
    for command in (["runs"], ["fit"], ["export", str(tmp_path / "x.csv")]):
        res = gaitforecast(*command, "--store", str(dropped), cwd=tmp_path)
        assert res.returncode == 2 and "lacks the column(s) wall_time_s" in res.stderr, (command, res.stderr)
    assert dropped.read_bytes() == before


@pytest.mark.parametrize("args, words", [
    (["train", "--arch", "gaitpt", "--width", "4096"], "has 72,716,201,984 parameters: training it needs about"),
    (["train", "--frames", "100000000"], "data.frames = 100000000 is out of range"),
])
def test_sizes_that_cannot_fit_in_memory_are_refused_before_anything_is_built(tmp_path, args, words):
    store = tmp_path / "s.duckdb"
    res = gaitforecast(*args, "--store", str(store), cwd=tmp_path)
    assert res.returncode == 2 and words in res.stderr.replace("\n", ""), res.stderr
    assert not store.exists()


def test_a_pool_larger_than_memory_is_refused_at_validation():
    from gaitforecast.errors import GaitforecastError
    from gaitforecast.sweep.spec import validate

    raw = {"data": {"pool_sequences": 10**8, "pool_frames": 1000},
           "grid": [{"arch": "gaitformer", "widths": [8], "fractions": [1.0]}]}
    with pytest.raises(GaitforecastError, match="make a pool of about .* GiB, over half of this machine"):
        validate(raw)
    with pytest.raises(GaitforecastError, match="pool_sequences = 1000000000000 is out of range"):
        validate({**raw, "data": {"pool_sequences": 10**12}})


def test_a_pose_tree_with_a_fifo_or_a_device_link_is_read_without_blocking(tmp_path):
    import pickle

    root = tmp_path / "tree"
    for ident in ("001", "002", "003"):
        (root / ident / "nm-01" / "000").mkdir(parents=True)
    with open(root / "001" / "nm-01" / "000" / "a.pkl", "wb") as fh:
        pickle.dump(np.random.default_rng(0).random((40, 17, 3)).astype(np.float32), fh)
    os.mkfifo(root / "002" / "nm-01" / "000" / "b.pkl")
    (root / "003" / "nm-01" / "000" / "c.pkl").symlink_to("/dev/zero")
    start = time.monotonic()
    res = gaitforecast("data-check", str(root), cwd=tmp_path)
    assert time.monotonic() - start < 20
    text = " ".join(res.stderr.split())  # rich wraps long lines
    assert res.returncode == 0 and "1 usable sequences" in text
    assert text.count("not a regular file") == 2


def test_a_huge_grid_is_counted_and_refused_without_yes(tmp_path):
    spec = tmp_path / "big.toml"
    widths = ", ".join(str(8 * (i + 1)) for i in range(64))
    fractions = ", ".join(f"{(i + 1) / 100:.2f}" for i in range(100))
    spec.write_text(f'[sweep]\nseeds = [0, 1, 2, 3]\n[[grid]]\narch = "gaitformer"\nwidths = [{widths}]\n'
                    f"fractions = [{fractions}]\n")
    start = time.monotonic()
    res = gaitforecast("run-small", "--spec", str(spec), "--dry-run", "--store", str(tmp_path / "s.duckdb"),
                       cwd=tmp_path)
    assert time.monotonic() - start < 10
    assert res.returncode == 2 and "plans 25,600 runs, more than 1,000" in res.stderr.replace("\n", " ")


def test_a_link_out_of_the_pose_tree_is_not_followed(tmp_path):
    import pickle

    outside = tmp_path / "secret"
    outside.mkdir()
    with open(outside / "x.pkl", "wb") as fh:
        pickle.dump(np.random.default_rng(1).random((40, 17, 3)).astype(np.float32), fh)
    root = tmp_path / "tree"
    (root / "001" / "nm-01" / "000").mkdir(parents=True)
    (root / "002" / "nm-01").mkdir(parents=True)
    with open(root / "001" / "nm-01" / "000" / "a.pkl", "wb") as fh:
        pickle.dump(np.random.default_rng(0).random((40, 17, 3)).astype(np.float32), fh)
    (root / "002" / "nm-01" / "000").symlink_to(outside, target_is_directory=True)
    res = gaitforecast("data-check", str(root), cwd=tmp_path)
    text = " ".join(res.stderr.split())
    assert res.returncode == 0 and "1 usable sequences" in text and "leads outside the pose folder" in text


def test_negative_sizes_are_refused_even_where_the_law_does_not_need_them():
    from gaitforecast.errors import GaitforecastError
    from gaitforecast.laws import prepare

    runs = _table()
    runs["samples"] = runs["flops"] / (6 * runs["params"])
    runs.loc[3, "params"] = -5.0
    with pytest.raises(GaitforecastError, match="an infinite or non-positive params"):
        prepare(runs, "loss", ("flops",))  # a compute-only law: params not needed, still refused


@pytest.mark.parametrize("args", [["train", "--seed", str(2**63)], ["train", "--seed", "-1"]])
def test_a_run_seed_out_of_range_is_refused_before_anything_is_written(tmp_path, args):
    store = tmp_path / "s.duckdb"
    res = gaitforecast(*args, "--store", str(store), cwd=tmp_path)
    assert res.returncode == 2 and "--seed" in res.stderr and "Traceback" not in res.stderr
    assert not store.exists()

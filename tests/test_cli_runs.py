"""`gaitforecast runs`, `export` and `import-runs` through the real entry point: JSON on stdout, exit codes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gaitforecast.store import RunStore

REPO = Path(__file__).resolve().parents[1]
ENTRY = "import sys; from gaitforecast.cli import main; sys.argv[0] = 'gaitforecast'; main()"


def gaitforecast_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh process (exit code, stdout and stderr as a user sees them)."""
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", ENTRY, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def gaitforecast(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The same entry point in this process (much faster): main() with sys.argv set, output captured."""
    from gaitforecast.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _argv(["gaitforecast", *args]):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _argv(argv: list[str]):
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    path = tmp_path / "sizes.csv"
    pd.DataFrame({"Model Size": [1e6, 2e6, 4e6], "Training FLOP": [6e12, 2.4e13, 9.6e13],
                  "loss": [3.1, 2.8, 2.6], "label": ["a", "b", "c"]}).to_csv(path, index=False)
    return path


def test_import_runs_then_runs_json_is_one_document(tmp_path, table):
    store = tmp_path / "s.duckdb"  # missing: the command exits 2, after its imports
    done = gaitforecast("import-runs", str(table), "--store", str(store), "--column", 'params="Model Size"',
                        "--column", "flops=Training FLOP", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["imported"] == 3 and summary["metrics"] == ["loss"] and summary["ignored_columns"] == ["label"]
    assert summary["source"] == "import:sizes.csv" and summary["samples_derived"] is True

    listed = gaitforecast_process("runs", "--store", str(store), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)  # the whole of stdout is one JSON document
    assert isinstance(runs, list) and len(runs) == 3
    for key in ("id", "arch", "width", "params", "samples", "flops", "status", "metrics"):
        assert all(key in r for r in runs)
    smallest = min(runs, key=lambda r: r["params"])
    assert smallest["metrics"] == {"loss": 3.1} and smallest["samples"] == pytest.approx(1e6)
    assert smallest["status"] == "done"

    human = gaitforecast("runs", "--store", str(store), cwd=tmp_path)
    assert human.returncode == 0 and human.stdout == "" and "3 runs" in human.stderr and "loss" in human.stderr


def test_export_infers_format_and_reimport_is_idempotent(tmp_path, table):
    store = tmp_path / "s.duckdb"  # missing: the command exits 2, after its imports
    RunStore(store).import_runs(pd.read_csv(table), table.name, {"params": "Model Size", "flops": "Training FLOP"})
    out = tmp_path / "out.parquet"
    done = gaitforecast("export", str(out), "--store", str(store), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"path": str(out), "format": "parquet", "rows": 3, "store": str(store)}
    assert sorted(pd.read_parquet(out)["loss"]) == [2.6, 2.8, 3.1]
    again = gaitforecast("import-runs", str(table), "--store", str(store), "--column", "params=Model Size",
                         "--column", "flops=Training FLOP", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == "" and "imported 3 runs" in again.stderr
    assert len(RunStore(store).runs()) == 3


def test_bad_input_exits_2_with_one_line_and_no_json(tmp_path, table):
    missing = gaitforecast_process("runs", "--store", str(tmp_path / "none.duckdb"), "--json", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert "gaitforecast run-small" in missing.stderr and "Traceback" not in missing.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text("params,samples,loss\n1e6,100,2.0\n-1,100,2.0\n")
    store = tmp_path / "s.duckdb"  # missing: the command exits 2, after its imports
    refused = gaitforecast("import-runs", str(bad), "--store", str(store), "--json", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == "" and "rows 2 " in refused.stderr
    assert not store.exists()

    garbage = tmp_path / "notes.duckdb"
    garbage.write_text("not a database")
    refused = gaitforecast("runs", "--store", str(garbage), cwd=tmp_path)
    assert refused.returncode == 2 and "not a gaitforecast run store" in refused.stderr
    assert garbage.read_text() == "not a database"


def test_cli_cold_start_leaves_heavy_libraries_unimported(tmp_path):
    """`runs` and `fit` must not pay for torch, streamlit or ray (the CLI's cold start, issue 11)."""
    store = tmp_path / "s.duckdb"  # missing: the command exits 2, after its imports
    probe = ("import sys, runpy; from gaitforecast.cli import main; sys.argv = ['gaitforecast', 'runs', "
             f"'--store', {str(store)!r}, '--json']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print([m for m in ('torch', 'streamlit', 'ray') if m in sys.modules], file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr
    from gaitforecast.models import count_params, config_for  # the lazy names still resolve

    assert count_params(config_for("gaitpt", 4, frames=32))[0] == 73004

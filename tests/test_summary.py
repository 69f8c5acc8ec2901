"""`gaitforecast summary` and the raw-joint baseline the sweep records: the headline's numbers on hand-made stores,
the CLI contract, and a tiny real sweep (raw baseline written once, equal to computing it directly)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gaitforecast.cli import app
from gaitforecast.data.suites import SUITE_NAMES, baseline_embeddings, build_suite, evaluate
from gaitforecast.errors import GaitforecastError
from gaitforecast.metrics import MAIN_METRIC
from gaitforecast.store import RunStore
from gaitforecast.sweep.executors import BASELINE_KIND, RAW_BASELINE_KIND, baseline_key, raw_baseline_key
from gaitforecast.sweep.summary import sweep_summary
from reliability_util import cli, sweep_args, write_spec
from test_cli_runs import gaitforecast_process

LOSS = "ssl_loss_heldout"
KEYS = {"metric", "archs", "raw_baseline", "frontier", "decades"}
DATA = {"suite_size": "quick", "world_seed": 0, "casia_b_path": "", "pool_frames": 60, "frames": 16}
# (arch, width, flops, accuracy, loss): the frontier walks 1e12 .30, 3e12 .35, 1e13 .50, 3e14 .65, 1e15 .70 for the
# accuracy and 1e12 5.0, 3e12 4.5, 1e13 4.0, 3e14 3.5, 1e15 3.0, 3e15 2.5 for the loss.
RUNS = [
    ("gaitpt", 8, 1e12, 0.30, 5.0), ("gaitpt", 12, 1e13, 0.50, 4.0), ("gaitpt", 16, 1e14, 0.45, 4.2),
    ("gaitpt", 24, 1e15, 0.70, 3.0),
    ("gaitformer", 64, 3e12, 0.35, 4.5), ("gaitformer", 96, 3e13, 0.40, 4.1), ("gaitformer", 128, 3e14, 0.65, 3.5),
    ("gaitformer", 192, 3e15, 0.60, 2.5),
]


def config(arch: str, width: int) -> dict:
    return {"arch": arch, "width": width, "model": {"frames": 16}, "data": DATA}


def run_row(arch: str, width: int, flops: float, metrics: dict, status: str = "done", rid: str | None = None) -> dict:
    row = {"config": config(arch, width), "arch": arch, "width": width, "seed": 0, "params": width * 1e4,
           "samples": flops / (6 * width * 1e4), "flops": flops, "status": status, "metrics": metrics}
    return {**row, "id": rid} if rid else row


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A store with RUNS, a better failed run, a done run without the metrics, and baselines for some keys."""
    path = tmp_path_factory.mktemp("summary") / "made.duckdb"
    store = RunStore(path)
    with store.writer() as w:
        w.write_runs([run_row(a, wd, c, {MAIN_METRIC: acc, LOSS: loss}) for a, wd, c, acc, loss in RUNS])
        w.upsert_run(run_row("gaitpt", 32, 1e11, {MAIN_METRIC: 0.99, LOSS: 0.1}, status="failed"))
        w.upsert_run(run_row("gaitformer", 256, 1e16, {"other": 1.0}))  # done but without either metric
        w.put_artifact(BASELINE_KIND, {"metrics": {MAIN_METRIC: 0.12, LOSS: 6.0}},
                       key=baseline_key(config("gaitpt", 24)))
        w.put_artifact(BASELINE_KIND, {"metrics": {MAIN_METRIC: 0.5}}, key=baseline_key(config("gaitpt", 12)))
        w.put_artifact(RAW_BASELINE_KIND, {"suite_size": "quick", "world_seed": 0, "metrics": {MAIN_METRIC: 0.14}},
                       key=raw_baseline_key(DATA))
    return path


def brute_frontier(runs: list[tuple[float, float]], higher: bool) -> list[tuple[float, float]]:
    """Points (flops, value) no cheaper-or-equal run matches or beats (the frontier's definition)."""
    def beats(a: float, b: float) -> bool:
        return a >= b if higher else a <= b

    return sorted((c, v) for c, v in runs if not any(beats(v2, v) for c2, v2 in runs if c2 < c))


def test_accuracy_summary_of_a_hand_made_store(made):
    doc = sweep_summary(RunStore(made))
    assert set(doc) == KEYS and doc["metric"] == MAIN_METRIC
    assert doc["archs"] == {
        "gaitpt": {"best": 0.70, "random_init": 0.12, "n_runs": 4, "best_run": doc["archs"]["gaitpt"]["best_run"],
                   "best_flops": 1e15, "width": 24},
        "gaitformer": {"best": 0.65, "random_init": None, "n_runs": 4,
                       "best_run": doc["archs"]["gaitformer"]["best_run"], "best_flops": 3e14, "width": 128},
    }
    assert list(doc["archs"]) == ["gaitpt", "gaitformer"]  # best first
    assert doc["raw_baseline"] == 0.14
    points = [(p["flops"], p["value"], p["arch"]) for p in doc["frontier"]]
    assert points == [(1e12, 0.30, "gaitpt"), (3e12, 0.35, "gaitformer"), (1e13, 0.50, "gaitpt"),
                      (3e14, 0.65, "gaitformer"), (1e15, 0.70, "gaitpt")]
    assert [(c, v) for c, v, _ in points] == brute_frontier([(c, acc) for _, _, c, acc, _ in RUNS], higher=True)
    steps = zip(doc["frontier"], doc["frontier"][1:])
    assert all(b["flops"] > a["flops"] and b["value"] > a["value"] for a, b in steps)
    assert doc["frontier"][-1]["run"] == doc["archs"]["gaitpt"]["best_run"]
    assert doc["decades"] == pytest.approx(3.0)


def test_loss_summary_takes_the_minimum(made):
    doc = sweep_summary(RunStore(made), LOSS)
    assert doc["metric"] == LOSS
    assert {a: (r["best"], r["random_init"], r["best_flops"]) for a, r in doc["archs"].items()} == {
        "gaitformer": (2.5, None, 3e15), "gaitpt": (3.0, 6.0, 1e15)}
    assert list(doc["archs"]) == ["gaitformer", "gaitpt"]
    assert doc["raw_baseline"] is None  # the raw artifact has no loss
    points = [(p["flops"], p["value"]) for p in doc["frontier"]]
    assert points == [(1e12, 5.0), (3e12, 4.5), (1e13, 4.0), (3e14, 3.5), (1e15, 3.0), (3e15, 2.5)]
    assert points == brute_frontier([(c, loss) for _, _, c, _, loss in RUNS], higher=False)
    assert doc["decades"] == pytest.approx(math.log10(3e15 / 1e12))


def test_imported_table_has_null_baselines(tmp_path):
    table = pd.DataFrame({"params": [1e6, 2e6, 4e6, 8e6], "flops": [1e15, 4e15, 2e16, 6e16],
                          "loss": [3.0, 3.2, 2.6, 2.7], "rank1": [0.2, 0.3, 0.25, 0.5]})
    store = RunStore(tmp_path / "imported.duckdb")
    store.import_runs(table, "sizes.csv")
    doc = sweep_summary(store, "loss")
    assert set(doc) == KEYS and doc["raw_baseline"] is None
    assert doc["archs"]["imported"]["random_init"] is None and doc["archs"]["imported"]["n_runs"] == 4
    assert doc["archs"]["imported"]["best"] == 2.6 and doc["archs"]["imported"]["width"] is None
    assert [(p["flops"], p["value"]) for p in doc["frontier"]] == [(1e15, 3.0), (2e16, 2.6)]
    assert doc["decades"] == pytest.approx(math.log10(20))
    acc = sweep_summary(store, "rank1")
    assert [(p["flops"], p["value"]) for p in acc["frontier"]] == [(1e15, 0.2), (4e15, 0.3), (6e16, 0.5)]
    with pytest.raises(GaitforecastError, match="several metrics and no default"):
        sweep_summary(store)


def test_one_frontier_point_is_zero_decades(tmp_path):
    store = RunStore(tmp_path / "one.duckdb")
    store.import_runs(pd.DataFrame({"params": [1e6, 2e6], "flops": [1e15, 4e15], "loss": [2.0, 2.5]}), "t.csv")
    doc = sweep_summary(store)  # the store's only metric
    assert doc["metric"] == "loss" and len(doc["frontier"]) == 1 and doc["decades"] == 0.0


def test_cli_json_and_human_output(made):
    result = CliRunner().invoke(app, ["summary", "--store", str(made), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == json.loads(json.dumps(sweep_summary(RunStore(made))))
    assert set(doc) == KEYS and {"best", "random_init", "n_runs"} <= set(doc["archs"]["gaitpt"])
    assert doc["archs"]["gaitformer"]["random_init"] is None
    human = CliRunner().invoke(app, ["summary", "--store", str(made), "--metric", LOSS])
    assert human.exit_code == 0 and human.stdout == ""
    assert f"best {LOSS} per architecture" in human.stderr
    assert "frontier: 6 runs, each better than every cheaper run" in human.stderr
    assert "3.48 decades" in human.stderr and "raw-joint nearest neighbour: -" in human.stderr


def test_cli_unknown_metric_exits_2_with_one_line(made, tmp_path):
    done = gaitforecast_process("summary", "--store", str(made), "--metric", "rank9", "--json", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown metric 'rank9'" in lines[0], done.stderr


def direct_raw_baseline(cache: Path) -> dict[str, float]:
    """The raw-joint NN metrics computed straight from the suites, without the sweep's code."""
    out = {}
    for name in SUITE_NAMES:
        suite = build_suite(name, cache_dir=cache, seed=0, size="quick")
        for metric, value in evaluate(suite, baseline_embeddings(np.asarray(suite.sequences))).items():
            out[f"{name}.{metric}"] = value
    return out


def test_tiny_sweep_records_the_raw_baseline_once_and_prints_the_summary(tmp_path):
    store, cache = tmp_path / "s.duckdb", tmp_path / "cache"
    first = cli(*sweep_args(write_spec(tmp_path, "one", fractions=(0.5,), samples=64), store, cache, "--json"))
    assert first.returncode == 0, first.stderr[-3000:]
    raw = RunStore(store).artifacts(RAW_BASELINE_KIND)
    assert len(raw) == 1
    record = RunStore(store).runs_records("done")[0]
    assert raw[0]["key"] == raw_baseline_key(record["config"]["data"]) == "quick:seed0"
    payload = raw[0]["payload"]
    assert (payload["suite_size"], payload["world_seed"]) == ("quick", 0)
    direct = direct_raw_baseline(cache)
    assert set(payload["metrics"]) == set(direct) and MAIN_METRIC in direct
    assert payload["metrics"] == pytest.approx(direct, rel=1e-12, abs=1e-12)
    assert set(payload["metrics"]) <= set(record["metrics"])  # the runs' own metric names

    summary = json.loads(first.stdout)["summary"]
    assert set(summary) == KEYS and summary["metric"] == MAIN_METRIC
    assert summary["raw_baseline"] == pytest.approx(direct[MAIN_METRIC])
    init = RunStore(store).artifacts(BASELINE_KIND)
    assert len(init) == 1 and summary["archs"]["gaitformer"]["random_init"] == pytest.approx(
        init[0]["payload"]["metrics"][MAIN_METRIC])
    assert summary["archs"]["gaitformer"]["best"] == pytest.approx(record["metrics"][MAIN_METRIC])
    assert summary["frontier"] == [{"flops": record["flops"], "value": summary["archs"]["gaitformer"]["best"],
                                    "arch": "gaitformer", "run": record["id"]}]

    second = cli(*sweep_args(write_spec(tmp_path, "two", fractions=(0.5, 1.0), samples=64), store, cache))
    assert second.returncode == 0, second.stderr[-3000:]
    again = RunStore(store).artifacts(RAW_BASELINE_KIND)
    assert again == raw  # same data config: not computed or written again (created_at unchanged)
    assert len(RunStore(store).runs_records("done")) == 2
    assert f"best {MAIN_METRIC} per architecture" in second.stderr and "raw-joint nearest neighbour: " in second.stderr


def test_human_output_prints_user_text_literally(tmp_path):
    path = tmp_path / "markup.duckdb"
    RunStore(path).import_runs(pd.DataFrame({"params": [1e6, 2e6], "flops": [1e15, 4e15], "loss": [2.0, 1.5],
                                    "arch": ["[bold]net[/bold]", "[bold]net[/bold]"]}), "m.csv")
    human = CliRunner().invoke(app, ["summary", "--store", str(path)])
    assert human.exit_code == 0, human.output
    assert human.stderr.count("[bold]net[/bold]") == 3  # the arch row and both frontier rows

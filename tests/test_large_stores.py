"""Stores of tens of thousands of runs: fits run on a stated, compute-stratified subsample in bounded memory;
`runs --json` streams every run a page at a time (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gaitforecast import forecast, laws
from gaitforecast.store import RunStore
from test_cli_runs import REPO, gaitforecast

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al.'s fit, as the truth
DENSE, MOE = 45_000, 15_000


def chinchilla_table(n: int, seed: int = 15) -> pd.DataFrame:
    """``n`` runs of the Chinchilla law (1 % log-normal noise), N over 1e6..1e10, D over 1e8..1e12; every fourth
    run is arch "moe", the rest "dense"."""
    rng = np.random.default_rng(seed)
    params = np.exp(rng.uniform(np.log(1e6), np.log(1e10), n))
    samples = np.exp(rng.uniform(np.log(1e8), np.log(1e12), n))
    loss = (TRUTH["E"] + TRUTH["A"] / params ** TRUTH["alpha"] + TRUTH["B"] / samples ** TRUTH["beta"])
    return pd.DataFrame({"id": [f"run{i:06d}" for i in range(n)],
                         "arch": np.where(np.arange(n) % 4 == 3, "moe", "dense"), "params": params,
                         "samples": samples, "flops": 6 * params * samples,
                         "loss": loss * np.exp(rng.normal(0, 0.01, n))})


@pytest.fixture(scope="module")
def big_store(tmp_path_factory) -> Path:
    """60,000 finished runs (45,000 dense, 15,000 moe), written in one transaction through the store's writer."""
    path = tmp_path_factory.mktemp("big") / "big.duckdb"
    runs = [{"id": r.id, "config": "{}", "status": "done", "source": "import:big.csv", "arch": r.arch,
             "params": r.params, "samples": r.samples, "flops": r.flops, "metrics": {"loss": r.loss}}
            for r in chinchilla_table(DENSE + MOE).itertuples(index=False)]
    with RunStore(path).writer() as w:
        w.write_runs(runs, [("metric_kind", "loss", {"kind": "loss"})])
    return path


def _law_data(n: int, group_size: int = 1) -> laws.LawData:
    table = chinchilla_table(n)
    table["params"] = np.repeat(table["params"].to_numpy()[::group_size], group_size)[:n]  # seeds of one config
    table["samples"] = np.repeat(table["samples"].to_numpy()[::group_size], group_size)[:n]
    table["flops"] = 6 * table["params"] * table["samples"]
    return laws.prepare(table.assign(arch="dense"), "loss", ("flops",))


def test_the_subsample_keeps_the_largest_runs_whole_groups_and_the_cap():
    data = _law_data(30_000)
    keep = laws.stratified_sample(data, cap=2_000, seed=0)
    scale = data.logx["flops"]
    assert keep.sum() == 2_000
    assert keep[np.argmin(scale)] and keep[np.argmax(scale)]  # the compute range is the runs' range
    assert keep[np.argsort(-scale)[:40]].all()  # the 40 largest runs: the top bin (47 runs, quota 50), kept whole
    top = scale > scale.min() + 0.9 * np.ptp(scale)  # the top tenth of the log-compute range
    assert keep[top].sum() / keep.sum() > 3 * top.mean()  # measured: 10.0 % of the sample, 2.3 % of the runs
    assert (keep == laws.stratified_sample(data, cap=2_000, seed=0)).all()  # deterministic for a seed
    assert (keep != laws.stratified_sample(data, cap=2_000, seed=1)).sum() > 1_000
    assert laws.stratified_sample(data, cap=30_000, seed=0).all()  # nothing to do at or under the cap
    grouped = _law_data(30_000, group_size=3)
    kept = laws.stratified_sample(grouped, cap=2_000, seed=0)
    assert 1_995 <= kept.sum() <= 2_001 and kept.sum() % 3 == 0  # groups are kept or left out together
    assert all(len(set(kept[grouped.groups == g])) == 1 for g in np.unique(grouped.groups)[::97])


def test_a_fit_on_the_subsample_is_close_to_the_fit_on_every_run():
    runs = chinchilla_table(8_000).assign(arch="dense")
    request = forecast.Request(metric="loss", law="chinchilla", resamples=40, max_runs=1_000)
    fitted = forecast.fit(runs, request)
    assert fitted.subsampled == {"runs": 8_000, "used": 1_000, "cap": 1_000, "seed": 0, "how": laws.SAMPLE_HOW}
    assert fitted.law.n_runs == 1_000
    assert any("fitted on 1,000 of the 8,000 runs" in note for note in fitted.notes)
    full = laws.LawFitter(law="chinchilla").fit(laws.prepare(runs, "loss", ()))  # every run, no bootstrap
    for name in ("E", "alpha", "beta"):  # measured: E 1.7004 vs 1.6931, alpha 0.3403 vs 0.3403, beta 0.2838 vs 0.2811
        assert fitted.law.params[name] == pytest.approx(full.params[name], rel=0.02), name
        assert fitted.law.params[name] == pytest.approx(TRUTH[name], rel=0.03), name
    budget = 1e22
    sub = forecast.forecast_budget(fitted, budget)
    assert sub["subsampled"]["used"] == 1_000
    at_optimum = full.predict(params=sub["params_opt"], samples=sub["samples_opt"], flops=budget)
    assert sub["predicted"] == pytest.approx(float(at_optimum), rel=0.003)  # measured: 2.1410 vs 2.1392


def test_fit_on_a_large_store_says_it_subsampled(big_store, tmp_path):
    args = ("fit", "--store", str(big_store), "--metric", "loss", "--resamples", "20")
    res = gaitforecast(*args, "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    cap = forecast.MAX_FIT_RUNS
    assert out["subsampled"] == {"runs": DENSE, "used": cap, "cap": cap, "seed": 0, "how": laws.SAMPLE_HOW}
    assert out["n_runs"] == cap
    assert f"fitted on {cap:,} of the {DENSE:,} runs" in " ".join(out["warnings"])
    for name in ("alpha", "beta"):
        assert out["params"][name] == pytest.approx(TRUTH[name], rel=0.02), name
    human = gaitforecast(*args, cwd=tmp_path)
    assert human.returncode == 0 and f"fitted on {cap:,} of the {DENSE:,} runs" in " ".join(human.stderr.split())


def test_runs_json_streams_every_run_a_page_at_a_time(big_store, tmp_path, monkeypatch):
    import gaitforecast.store.runstore as runstore

    pages: list[int] = []
    select = runstore._select_runs

    def counted(*args, **kwargs):
        frame = select(*args, **kwargs)
        pages.append(len(frame))
        return frame

    def whole_table(*args, **kwargs):
        raise AssertionError("runs --json read the whole table at once")

    monkeypatch.setattr(runstore, "_select_runs", counted)
    monkeypatch.setattr(RunStore, "runs", whole_table)
    res = gaitforecast("runs", "--store", str(big_store), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    records = json.loads(res.stdout)
    assert len(records) == DENSE + MOE and len({r["id"] for r in records}) == DENSE + MOE
    assert records[0]["metrics"]["loss"] > 0 and records[-1]["arch"] in ("dense", "moe")
    assert pages == [20_000, 20_000, 20_000, 0]  # never more than a page of runs in memory
    monkeypatch.undo()
    assert records[:3] == RunStore(big_store).runs_records()[:3]  # the same records as the whole-table read

    human = gaitforecast("runs", "--store", str(big_store), cwd=tmp_path)
    assert human.returncode == 0 and "the 1,000 newest of 60,000 runs" in human.stderr
    assert len([line for line in human.stderr.splitlines() if "run0" in line]) == 1_000


def test_fit_on_a_large_store_stays_within_2_gib_more_than_reading_it(big_store, tmp_path):
    """The fit runs in a child whose address space is capped at what it uses after a first read of the store plus
    2 GiB: before the subsample, screening the 2,304 start points over 45,000 runs alone took 4.1 GB at once."""
    child = (
        "import resource, sys\n"
        "from gaitforecast.store import RunStore\n"
        "from gaitforecast.cli import main\n"
        f"RunStore({str(big_store)!r}).metric_names()  # DuckDB's threads and pools exist before the cap\n"
        "size = int(next(l for l in open('/proc/self/status') if l.startswith('VmSize')).split()[1]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 2**30, resource.RLIM_INFINITY))\n"
        f"sys.argv = ['gaitforecast', 'fit', '--store', {str(big_store)!r}, '--metric', 'loss', '--resamples', '20',"
        " '--json']\n"
        "main()\n"
    )
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    res = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["subsampled"]["used"] == forecast.MAX_FIT_RUNS

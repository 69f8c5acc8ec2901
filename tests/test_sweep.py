"""Sweep specs: shipped profiles, validation errors that name the field, the planner's ids and counts."""

import math

import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.models import config_for
from gaitforecast.models.flops import train_flops
from gaitforecast.store import run_id
from gaitforecast.sweep import executors
from gaitforecast.sweep.planner import plan, summarize
from gaitforecast.train.config import train_counts
from gaitforecast.sweep.spec import PROFILES, load_profile, load_spec, parse_toml, validate

GRID = [{"arch": "gaitformer", "widths": [16, 32], "fractions": [0.5, 1.0]}]


def test_profiles_validate_and_default_meets_the_brief():
    for name in PROFILES:
        assert plan(load_profile(name))
    spec = load_profile("default")
    runs = plan(spec)
    assert {r.arch for r in runs} == {"gaitpt", "gaitformer"}
    assert summarize(runs)["compute_decades"] >= 2.5
    assert min(r.steps for r in runs) >= 60  # out of the step-starved regime (measured in the profile)
    # each family has a grid of its own (widths x sequences seen), so each gets a law: GaitPT >= 12 runs over
    # >= 3 widths and >= 3 data sizes, GaitFormer >= 2.5 decades of compute on its own
    pt = [r for r in runs if r.arch == "gaitpt"]
    assert len(pt) >= 12 and len({r.width for r in pt}) >= 3 and len({r.samples for r in pt}) >= 3
    assert summarize([r for r in runs if r.arch == "gaitformer"])["compute_decades"] >= 2.5
    # replicate seeds on a few configs of each family, so the store carries a seed-noise estimate for each law
    replicated = {}
    for r in runs:
        replicated.setdefault((r.arch, r.width, r.samples), set()).add(r.seed)
    for arch in ("gaitpt", "gaitformer"):
        assert sum(len(seeds) >= 2 for key, seeds in replicated.items() if key[0] == arch) >= 2, arch
    # positives are two windows of one turning track, so the pool's tracks must be longer than a window
    assert spec.data.pairs == "track" and spec.data.turn_rate > 0 and spec.data.pool_frames >= 3 * spec.data.frames
    quick = plan(load_profile("quick"))
    assert len(quick) <= 6 and all(r.config["data"]["suite_size"] == "quick" for r in quick)
    assert {r.config["data"]["pairs"] for r in quick} == {"track"}  # the same code path as the default


@pytest.mark.parametrize(
    "raw, field, allowed",
    [
        ({"grid": [{"arch": "resnet", "widths": [8], "fractions": [1.0]}]}, "grid[0].arch",
         "gaitpt, gaitpt-v1, gaitformer"),
        ({"grid": [{"arch": "gaitpt", "widths": [8], "fractions": [1.5]}]}, "grid[0].fractions[0]", "(0, 1.0]"),
        ({"grid": [{"arch": "gaitpt", "widths": [8], "fractions": [0.5], "lrr": 1}]}, "'lrr'", "lr"),
        ({"data": {"suite_size": "huge"}, "grid": GRID}, "data.suite_size", "quick, full"),
        ({"train": {"precision": "fp8"}, "grid": GRID}, "train.precision", "auto, fp32, bf16"),
        ({"train": {"batch_size": 1}, "grid": GRID}, "train.batch_size", "[2, 65536]"),
        ({"trian": {}, "grid": GRID}, "'trian'", "sweep, data, train, augment, grid"),
        ({"augment": {"p_mirror": 2.0}, "grid": GRID}, "augment.p_mirror", "[0, 1]"),
    ],
)
def test_invalid_spec_names_field_and_allowed_values(raw, field, allowed):
    with pytest.raises(GaitforecastError) as err:
        validate(raw)
    assert field in str(err.value) and allowed in str(err.value)


def test_other_spec_mistakes(tmp_path):
    with pytest.raises(GaitforecastError, match="at least one"):
        validate({"train": {"epochs": 1}})
    with pytest.raises(GaitforecastError, match="either epochs or samples"):
        validate({"train": {"epochs": 1, "samples": 100}, "grid": GRID})
    with pytest.raises(GaitforecastError, match="missing the field 'widths'"):
        validate({"grid": [{"arch": "gaitpt", "fractions": [1.0]}]})
    with pytest.raises(GaitforecastError, match="repeated"):
        validate({"grid": [{"arch": "gaitpt", "widths": [8, 8], "fractions": [1.0]}]})
    with pytest.raises(GaitforecastError, match="exceeds data.pool_frames"):
        validate({"data": {"frames": 90}, "grid": GRID})
    with pytest.raises(GaitforecastError, match="not valid TOML"):
        parse_toml("[grid\narch=", "x.toml")
    with pytest.raises(GaitforecastError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(GaitforecastError, match="allowed values: quick, default, paper"):
        load_profile("huge")


def test_spec_file_round_trip(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[train]\nsamples = 640\n[[grid]]\narch = "gaitformer"\nwidths = [16]\nfractions = [0.25, 1.0]\n'
                    'seeds = [3, 4]\nlr = 1e-3\n')
    spec = load_spec(path)
    assert spec.name == "mine" and spec.grid[0].train.lr == 1e-3 and spec.grid[0].train.samples == 640
    runs = plan(spec)
    assert len(runs) == 4 and {r.seed for r in runs} == {3, 4}


def test_planner_ids_counts_and_order():
    spec = validate({"data": {"pool_sequences": 1000, "heldout_sequences": 100, "frames": 30},
                     "train": {"epochs": 2, "batch_size": 64}, "grid": GRID})
    runs = plan(spec)
    assert len(runs) == 4 and len({r.id for r in runs}) == 4
    assert [r.flops for r in runs] == sorted((r.flops for r in runs), reverse=True)
    for r in runs:
        assert r.id == run_id(r.config)
        assert set(r.config) == {"recipe", "arch", "width", "fraction", "seed", "data", "train", "augment", "model"}
    assert [r.id for r in plan(spec)] == [r.id for r in runs]  # stable
    half = next(r for r in runs if r.width == 32 and r.fraction == 0.5)
    # 0.5 x (1000 - 100) = 450 unique sequences; 2 epochs = 900 -> 14 full batches of 64 = 896 seen
    assert (half.unique_sequences, half.steps, half.samples) == (450, 14, 896)
    assert half.flops == train_flops(config_for("gaitformer", 32, frames=30), 896)
    assert train_counts(spec.data, spec.train, 0.01)[:2] == (9, 9)  # batch shrinks to the data


def test_worker_layout_never_oversubscribes(monkeypatch):
    monkeypatch.setattr(executors, "cpu_cores", lambda: 8)
    assert executors.layout(None, 20) == (4, 2)
    assert executors.layout(2, 20) == (2, 4)
    assert executors.layout(3, 20) == (3, 2)
    assert executors.layout(8, 3) == (3, 2)  # never more workers than runs
    assert executors.layout(None, 5, cuda=True) == (1, 8)
    assert executors.layout(2, 20, threads=1) == (2, 1)
    with pytest.raises(GaitforecastError, match="--threads"):
        executors.layout(2, 20, threads=0)
    with pytest.raises(GaitforecastError, match="--workers"):
        executors.layout(0, 3)
    assert math.prod(executors.layout(16, 20)) <= 16


def test_missing_ray_gives_the_install_hint(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail like an absent package
    with pytest.raises(GaitforecastError, match=r"pip install 'gaitforecast\[ray\]'"):
        executors.make_backend("ray", 1, 1)
    with pytest.raises(GaitforecastError, match="allowed values: local, ray, slurm"):
        executors.make_backend("pbs", 1, 1)


def test_cli_bad_spec_exits_2_with_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[grid]]\narch = "gaitpt"\nwidths = [8]\nfractions = [0.5]\nepochs = -1\n')
    env = {**__import__("os").environ, "PYTHONPATH": str(repo), "COLUMNS": "300"}
    out = subprocess.run([sys.executable, "-c", "from gaitforecast.cli import main; main()", "run-small", "--spec",
                          str(bad), "--store", str(tmp_path / "s.duckdb")], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert "grid[0].epochs" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "s.duckdb").exists()  # nothing written for a refused spec


def test_local_backend_survives_a_worker_dying_between_poll_and_submit():
    """A worker killed while idle breaks the pool; the next submit must start a fresh pool, not raise."""
    import os
    import signal
    import time

    from gaitforecast.sweep.backend import Task
    from gaitforecast.sweep.local import LocalBackend

    backend = LocalBackend(workers=1, threads=1)
    bad = Task(run_id="r1", config={"not": "a run"}, cache_dir="/nonexistent", threads=1, want_baseline=False)
    try:
        backend.submit(bad)
        first = []
        while not first:
            first = backend.poll(1.0)
        assert first[0].run_id == "r1" and first[0].error and not first[0].worker_died  # a failed run, pool healthy
        (worker,) = backend._pool._processes.values()
        os.kill(worker.pid, signal.SIGKILL)
        time.sleep(1.0)  # let the pool notice it is broken
        backend.submit(Task(run_id="r2", config={}, cache_dir="/nonexistent", threads=1, want_baseline=False))
        second = []
        while not second:
            second = backend.poll(1.0)
        assert [o.run_id for o in second] == ["r2"] and second[0].error and not second[0].worker_died
    finally:
        backend.stop()

"""The Ray backend for real: a local Ray with 2 CPUs runs a tiny sweep; the driver alone writes the store."""

import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'gaitforecast[ray]' to test --backend ray")

from gaitforecast.store import RunStore  # noqa: E402
from gaitforecast.sweep.executors import run_sweep  # noqa: E402
from gaitforecast.sweep.planner import plan  # noqa: E402
from gaitforecast.sweep.spec import validate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ray_backend_runs_a_sweep_and_the_driver_writes(tmp_path):
    raw = {"data": {"pool_sequences": 128, "frames": 16, "heldout_sequences": 16},
           "train": {"samples": 128, "batch_size": 32, "eval_points": 0, "precision": "fp32"},
           "grid": [{"arch": "gaitformer", "widths": [16, 24], "fractions": [1.0]}]}
    runs = plan(validate(raw))
    pythonpath = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, object_store_memory=128 * 1024**2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}})
    try:
        store = RunStore(tmp_path / "s.duckdb")
        summary = run_sweep(runs, store, cache_dir=tmp_path / "cache", workers=2, backend="ray")
        assert ray.is_initialized()  # a Ray the caller started is left running
    finally:
        ray.shutdown()
    assert sorted(summary.done) == sorted(r.id for r in runs) and summary.threads_per_worker == 1
    table = store.runs().set_index("id")
    assert set(table["status"]) == {"done"} and len(table) == 2
    for r in runs:
        assert table.loc[r.id, "samples"] == 128 and table.loc[r.id, "threads"] == 1
        assert 0 <= table.loc[r.id, "synth-casiab.rank1_mean"] <= 1
    assert len(store.artifacts("random_init")) == 2
    again = run_sweep(runs, store, cache_dir=tmp_path / "cache", workers=2, backend="local")
    assert again.skipped == 2 and not again.done  # ids are backend-independent

"""`run-small --backend slurm` through submitit: the spec's [slurm] table, a sweep on submitit's local executor
(the driver alone writes the store), and what happens when Slurm is missing, refuses a job or a job dies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit", reason="submitit is not installed: pip install 'gaitforecast[slurm]'")

from gaitforecast.errors import GaitforecastError  # noqa: E402
from gaitforecast.store import RunStore  # noqa: E402
from gaitforecast.sweep.backend import Task  # noqa: E402
from gaitforecast.sweep.planner import plan  # noqa: E402
from gaitforecast.sweep.slurm_backend import SlurmBackend  # noqa: E402
from gaitforecast.sweep.spec import SlurmSpec, validate  # noqa: E402
from test_cli_runs import gaitforecast  # noqa: E402

RAW = {"sweep": {"name": "tiny-slurm"},
       "data": {"pool_sequences": 128, "frames": 16, "heldout_sequences": 16},
       "train": {"samples": 64, "batch_size": 32, "eval_points": 0, "precision": "fp32"},
       "grid": [{"arch": "gaitformer", "widths": [16, 24], "fractions": [1.0]}]}


def _spec(tmp_path: Path, slurm: str) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text("""
[sweep]
name = "tiny-slurm"
[data]
pool_sequences = 128
frames = 16
heldout_sequences = 16
[train]
samples = 64
batch_size = 32
eval_points = 0
precision = "fp32"
[[grid]]
arch = "gaitformer"
widths = [16, 24]
fractions = [1.0]
""" + slurm)
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_slurm_table_is_validated_and_stays_out_of_run_ids():
    table = {"partition": "gpu", "time": 90, "gpus_per_run": 1, "cpus_per_run": 8, "mem_gb": 32, "account": "lab",
             "qos": "normal", "extra": {"constraint": "a100"}, "setup": ["module load cuda"]}
    spec = validate({**RAW, "slurm": table})
    assert spec.slurm == SlurmSpec(partition="gpu", time=90, gpus_per_run=1, cpus_per_run=8, mem_gb=32.0,
                                   account="lab", qos="normal", extra=(("constraint", "a100"),),
                                   setup=("module load cuda",))
    assert validate(RAW).slurm == SlurmSpec()  # no table: the cluster's defaults, 60 minutes, 1 CPU, no GPU
    assert [r.id for r in plan(spec)] == [r.id for r in plan(validate(RAW))]  # execution settings are not hashed
    for bad, message in (({"gpus": 1}, "spec [slurm]: unknown field 'gpus'; allowed fields: cluster, partition"),
                         ({"time": 0}, "spec field slurm.time = 0 is out of range"),
                         ({"cluster": "pbs"}, "slurm.cluster = 'pbs' is not allowed; allowed values: slurm, local"),
                         ({"partition": "a b"}, "slurm.partition must be a name without spaces"),
                         ({"extra": "--constraint=a100"}, "slurm.extra must be a table of sbatch options"),
                         ({"setup": "module load cuda"}, "slurm.setup must be a list of shell lines")):
        with pytest.raises(GaitforecastError, match=None) as err:
            validate({**RAW, "slurm": bad})
        assert message in str(err.value)


def test_the_default_profile_documents_every_slurm_field_with_a_valid_example():
    import re

    from gaitforecast.sweep.spec import parse_toml, profile_text

    text = profile_text("default")
    example = [re.sub(r"^# ", "", line) for line in text[text.index("# [slurm]"):].splitlines()
               if line == "# [slurm]" or re.match(r"# \w+ = ", line)]
    assert [line.split(" = ")[0] for line in example[1:]] == [f for f in SlurmSpec.__dataclass_fields__]
    slurm = validate({**RAW, **parse_toml("\n".join(example), "the default profile's [slurm] example")}).slurm
    assert (slurm.partition, slurm.gpus_per_run, slurm.cpus_per_run, slurm.extra[0]) == ("gpu", 1, 8,
                                                                                          ("constraint", "a100"))


@pytest.mark.slow
def test_a_sweep_runs_as_submitit_jobs_and_the_driver_writes(tmp_path, cache):
    spec = _spec(tmp_path, '[slurm]\ncluster = "local"\ntime = 10\ncpus_per_run = 1\n')
    store_path = tmp_path / "runs" / "s.duckdb"
    args = ("run-small", "--spec", str(spec), "--store", str(store_path), "--cache-dir", str(cache), "--quiet",
            "--json")
    res = gaitforecast(*args, "--backend", "slurm", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["backend"] == "slurm" and doc["done"] == 2
    assert (doc["workers"], doc["threads_per_worker"]) == (2, 1)  # every run queued at once, cpus_per_run threads
    table = RunStore(store_path).runs().set_index("id")
    assert set(table["status"]) == {"done"} and len(table) == 2
    for run in doc["runs"]:
        assert table.loc[run["id"], "samples"] == 64 and table.loc[run["id"], "threads"] == 1
        assert 0 <= table.loc[run["id"], "synth-casiab.rank1_mean"] <= 1
    jobs = sorted(p for p in (store_path.parent / "slurm").iterdir() if p.name != "%j")
    assert len(jobs) == 2 and all(any(j.glob("*_result.pkl")) and any(j.glob("*_log.out")) for j in jobs)
    again = gaitforecast(*args, "--backend", "local", cwd=tmp_path)  # ids do not depend on the backend
    assert again.returncode == 0 and json.loads(again.stdout)["skipped"] == 2


def test_no_slurm_here_is_refused_before_the_store_is_touched(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither sbatch nor srun
    store = tmp_path / "s.duckdb"
    res = gaitforecast("run-small", "--spec", str(_spec(tmp_path, "")), "--store", str(store), "--backend", "slurm",
                       cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "this machine has no Slurm (sbatch and srun not on PATH)" in " ".join(res.stderr.split())
    assert not store.exists()


def test_a_job_slurm_refuses_is_a_failed_run_with_sbatch_s_reason(tmp_path, cache, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "srun"):  # a cluster whose sbatch refuses the partition
        (bin_dir / tool).write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    store_path = tmp_path / "s.duckdb"
    res = gaitforecast("run-small", "--spec", str(_spec(tmp_path, '[slurm]\npartition = "nope"\n')), "--store",
                       str(store_path), "--cache-dir", str(cache), "--backend", "slurm", "--quiet", "--json",
                       cwd=tmp_path)
    assert res.returncode == 1, res.stderr  # failed runs: exit 1, and the reason per run
    assert json.loads(res.stdout)["failed"] == 2
    runs = RunStore(store_path).runs_records()
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert all("Slurm refused the job" in r["error"] and "invalid partition specified: nope" in r["error"]
               for r in runs)


def test_a_job_that_dies_without_a_result_is_an_interrupted_run(tmp_path):
    backend = SlurmBackend(1, 1, folder=tmp_path / "slurm", cluster="local", time=5)
    job = backend.executor.submit(os._exit, 9)  # the job's process ends with no result written
    job._results_timeout_s = 0  # submitit waits 15 s for a result file on a slow shared filesystem; not here
    backend._jobs["r1"] = job
    outcomes: list = []
    while not outcomes:
        outcomes = backend.poll(0.2)
    backend.stop()
    (out,) = outcomes
    assert out.run_id == "r1" and out.worker_died and out.result is None
    assert "ended without a result" in out.error and str(tmp_path / "slurm") in out.error

    backend = SlurmBackend(1, 1, folder=tmp_path / "slurm", cluster="local", time=5)
    backend.submit(Task("r2", {"not": "a run config"}, str(tmp_path), 1, False))  # the run raises in the job
    outcomes = []
    while not outcomes:
        outcomes = backend.poll(0.2)
    backend.stop()
    (out,) = outcomes
    assert out.run_id == "r2" and not out.worker_died and out.error.startswith("Traceback")
    assert "Error" in out.error.strip().splitlines()[-1]  # the run's own exception, e.g. the config it lacks

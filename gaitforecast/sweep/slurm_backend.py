"""Slurm backend: one Slurm job per run through submitit; results return to the driver, which alone writes the store.

Use ``--backend slurm`` with the spec's ``[slurm]`` table (:class:`gaitforecast.sweep.spec.SlurmSpec`: partition,
time, GPUs and CPUs per run, memory, account, qos, extra sbatch options, setup lines). Each run is a job named
``gaitforecast`` that trains with ``cpus_per_run`` threads and returns an Outcome, which submitit pickles into the
job's folder ``<store folder>/slurm/<job id>/`` beside its logs. That folder must be on a filesystem the compute
nodes share, and jobs run the driver's Python, so its environment must be there too.

``--workers N`` caps the jobs queued or running at once (default: every run; Slurm schedules them). A job that ends
without a result (time limit, out of memory, node failure, scancel) is an interrupted run, redone by the next
`run-small`; a job Slurm refuses (bad partition, account) is a failed run with sbatch's message. Progress is per
run (done, failed), not per step. Ctrl-C or SIGTERM cancels the jobs in flight; a driver killed outright cannot,
so cancel them with ``scancel --name gaitforecast``. ``cluster = "local"`` runs the jobs as processes on this
machine with submitit's local executor. Needs ``pip install 'gaitforecast[slurm]'``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from gaitforecast.errors import GaitforecastError
from gaitforecast.sweep.backend import Outcome, Task, error_text, execute_task

JOB_NAME = "gaitforecast"
_ERROR_TAIL = 3000  # characters of a dead job's log tail kept in the run's error text


def _import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise GaitforecastError(
            "the slurm backend needs submitit, which is not installed: pip install 'gaitforecast[slurm]' "
            "(or use --backend local)"
        ) from None
    return submitit


def check_slurm(cluster: str) -> Any:
    """submitit, once it is known the jobs can go where ``cluster`` says; else a GaitforecastError with the fix.
    The CLI calls it before opening the store, so a missing Slurm is refused before anything is prepared."""
    submitit = _import_submitit()
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if cluster == "slurm" and missing:
        raise GaitforecastError(
            f"--backend slurm: this machine has no Slurm ({' and '.join(missing)} not on PATH); run from the "
            'cluster\'s login node, or set cluster = "local" in the spec\'s [slurm] table to run the jobs here as '
            "processes")
    return submitit


def _slurm_work(task: Task) -> Outcome:
    """The job: train one run on the node; a run that raises comes back as an error, not a dead job."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(task.threads)
    try:
        return Outcome(task.run_id, result=execute_task(task))
    except Exception as exc:
        return Outcome(task.run_id, error=error_text(exc))


class SlurmBackend:
    """submitit backend (see module docstring); ``threads`` is each job's CPU count."""

    def __init__(self, workers: int, threads: int, *, folder: Path | str, cluster: str = "slurm",
                 partition: str = "", time: int = 60, gpus_per_run: int = 0, mem_gb: float = 0.0,
                 account: str = "", qos: str = "", extra: tuple = (), setup: tuple = ()) -> None:
        submitit = check_slurm(cluster)
        self.workers, self.threads = workers, threads
        self.folder = Path(folder)
        self.executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster=cluster)
        params: dict[str, Any] = dict(name=JOB_NAME, timeout_min=time, nodes=1, tasks_per_node=1,
                                      cpus_per_task=threads, gpus_per_node=gpus_per_run)
        if mem_gb:
            params["mem_gb"] = mem_gb
        for key, value in (("partition", partition), ("account", account), ("qos", qos)):
            if value:
                params[f"slurm_{key}"] = value
        if extra:
            params["slurm_additional_parameters"] = dict(extra)
        if setup:
            params[f"{cluster}_setup"] = list(setup)
        self.executor.update_parameters(**params)
        self._jobs: dict[str, Any] = {}
        self._refused: list[Outcome] = []

    def submit(self, task: Task) -> None:
        try:
            self._jobs[task.run_id] = self.executor.submit(_slurm_work, task)
        except Exception as exc:  # sbatch refused it (partition, account, limits): the run fails with the reason
            self._refused.append(Outcome(task.run_id, error=f"Slurm refused the job: {exc}"))

    def poll(self, timeout: float) -> list[Outcome]:
        out, self._refused = self._refused, []
        for rid, job in list(self._jobs.items()):
            if job.done():
                del self._jobs[rid]
                out.append(self._outcome(rid, job))
        if not out:
            time.sleep(timeout)
        return out

    def _outcome(self, rid: str, job: Any) -> Outcome:
        try:
            return job.result()
        except Exception as exc:  # no result: time limit, out of memory, node failure, cancelled
            tail = str(exc)[-_ERROR_TAIL:]
            return Outcome(rid, error=f"{tail}\nthe Slurm job {job.job_id} ended without a result (state "
                                      f"{job.state}); its logs are in {self.folder / str(job.job_id)}",
                           worker_died=True)

    def drain_events(self) -> list[dict[str, Any]]:
        return []  # jobs report nothing before they end

    def stop(self) -> None:
        for job in self._jobs.values():
            try:
                job.cancel(check=False)
            except Exception:  # already gone; nothing left to stop
                pass
        self._jobs.clear()

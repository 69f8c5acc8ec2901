"""One pretraining run: SimCLR + KoLeo on a data fraction of the pool, then zero-shot evaluation on every suite.

Use :func:`train_run` with a resolved run config (from :mod:`gaitforecast.sweep.planner`). It never touches the
run store: it returns a plain, picklable :class:`RunResult` (the run's row, final metrics, curves, and the
random-init baseline when asked for) and the sweep driver writes it, so there is only ever one store writer.

Recipe: AdamW over ``models.mup.param_groups`` (muP learning rates per group), linear warmup then cosine decay to
zero, gradient clipping, bf16 autocast where ``models.runtime`` says it pays, CUDA when present. Both views of a
batch go through the model in one forward pass. Every ``log_every`` steps the training loss is recorded;
``eval_points`` times during training and once at the end the frozen encoder is scored on all suites and the
held-out SSL loss is measured; these points make the run's curves (eval history).
"""

from __future__ import annotations

import math
import os
import platform
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gaitforecast.data.augment import two_views
from gaitforecast.errors import GaitforecastError
from gaitforecast.train.config import RunConfig
from gaitforecast.train.evaluate import heldout_loss, load_pool, load_suites, zero_shot
from gaitforecast.train.objective import ssl_loss

Progress = Callable[[dict[str, Any]], None]
MAIN_SUITE = "synth-casiab"  # scored at intermediate evaluations when train.eval_during = "main"


@dataclass
class RunResult:
    """What a finished run hands back to the driver (plain data; the driver writes it to the store).

    ``measured`` holds only what training measures (``record.RunRecord.MEASURED``: wall time, throughput, dtype,
    threads, versions, git sha, host, device); the run's id and sizes are the planner's and are not sent back.
    """

    measured: dict[str, Any]
    metrics: dict[str, float]
    curves: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None


def lr_factor(step: int, steps: int, warmup_fraction: float) -> float:
    """Linear warmup over ``warmup_fraction`` of the steps, then cosine decay to 0 at ``steps``."""
    warmup = max(1, int(round(warmup_fraction * steps))) if warmup_fraction > 0 else 0
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def eval_steps(steps: int, eval_points: int) -> list[int]:
    """Steps after which to evaluate: ``eval_points`` evenly spaced during training, plus the last step."""
    marks = {max(1, int(round(k * steps / (eval_points + 1)))) for k in range(1, eval_points + 1)}
    return sorted(marks | {steps})


_GIT_SHA: list[str | None] = []


def git_sha() -> str | None:
    """The commit of the source tree this package runs from, or None outside a git checkout."""
    if not _GIT_SHA:
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                                 capture_output=True, text=True, timeout=5)
            _GIT_SHA.append(out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None)
        except (OSError, subprocess.SubprocessError):
            _GIT_SHA.append(None)
    return _GIT_SHA[0]


def versions() -> dict[str, str]:
    """Versions that can shift a run's figures."""
    from gaitforecast import __version__

    return {"gaitforecast": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a run's ``precision`` ("auto" asks models.runtime; fp32 -> None)."""
    from gaitforecast.models.runtime import pick_autocast_dtype

    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return pick_autocast_dtype(device)


def check_compile(device: torch.device) -> None:
    """Refuse --compile where torch.compile cannot build kernels: on CPU its backend needs a C++ compiler."""
    if device.type == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++")):
        raise GaitforecastError("--compile needs a C++ compiler on CPU (torch.compile builds its kernels with it); "
                                "install g++ (apt-get install g++) or run without --compile")


def compiled_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile(model)`` with static shapes (every training batch has the same shape)."""
    check_compile(device)
    return torch.compile(model, dynamic=False)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _batches(n_train: int, batch: int, steps: int, gen: torch.Generator):
    """Yield ``steps`` index batches (positions into the training set) from a stream of epoch permutations."""
    buffer = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        while buffer.numel() < batch:
            buffer = torch.cat([buffer, torch.randperm(n_train, generator=gen)])
        yield buffer[:batch]
        buffer = buffer[batch:]


def train_run(config: dict[str, Any], cache_dir: Path | str, *, threads: int | None = None,
              device: str | None = None, want_baseline: bool = False, progress: Progress | None = None,
              eval_batch: int = 1024, compile: bool = False) -> RunResult:
    """Pretrain and evaluate one run; return its results without writing anything.

    ``compile``: run the training forward and backward under ``torch.compile`` (static shapes; evaluation stays
    eager). The same function up to rounding, faster per step once compiled; the compile itself costs a fixed
    time per run (see the README's Performance section), so it pays on long runs only."""
    from gaitforecast.models import build_model
    from gaitforecast.models.flops import train_flops
    from gaitforecast.models.mup import param_groups
    from gaitforecast.models.runtime import pin_threads
    from gaitforecast.record import run_id

    started = time.perf_counter()
    if threads:
        pin_threads(int(threads))
    dev = pick_device(device)
    run = RunConfig.from_dict(config)
    seed = run.seed
    _seed_everything(seed)
    data, train, cfg, augment = run.data, run.train, run.model, run.augment
    pool = load_pool(Path(cache_dir), data)
    suites = load_suites(Path(cache_dir), data)
    unique, batch, steps, samples = run.counts()
    train_idx = torch.from_numpy(pool.train_indices(unique))

    model = build_model(cfg, seed=seed).to(dev)
    step_model = compiled_model(model, dev) if compile else model
    amp = autocast_dtype(train.precision, dev)
    rid = run_id(config)
    baseline = None
    if want_baseline:
        baseline = {"arch": cfg.arch, "width": cfg.width, "frames": cfg.frames, "seed": seed,
                    "suite_size": data.suite_size, "run_id": rid,
                    "metrics": zero_shot(model, suites, dev, amp, eval_batch)}

    groups = param_groups(model, cfg, lr=train.lr, weight_decay=train.weight_decay)
    opt = torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, train.warmup_fraction))
    order_gen = torch.Generator().manual_seed(seed * 1_000_003 + 1)
    view_gen = torch.Generator().manual_seed(seed * 1_000_003 + 2)
    per_sample = train_flops(cfg, 1)
    evals = set(eval_steps(steps, train.eval_points))
    curves: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    recent: list[float] = []
    train_time = 0.0

    def point(step: int, name: str, value: float) -> None:
        curves.append({"step": step, "samples_seen": step * batch, "flops": per_sample * step * batch,
                       "name": name, "value": float(value)})

    model.train()
    t_train = time.perf_counter()
    pending: list[tuple[int, torch.Tensor]] = []
    for step, pos in enumerate(_batches(unique, batch, steps, order_gen), start=1):
        first, partner = pool.pair(train_idx[pos])
        v1, v2 = two_views(first, cfg.frames, augment, view_gen, partner)
        with (torch.autocast(dev.type, dtype=amp) if amp is not None else torch.enable_grad()):
            z = step_model(torch.cat([v1, v2]).to(dev, non_blocking=True))
        z1, z2 = z.float().chunk(2)
        loss = ssl_loss(z1, z2, train.temperature, train.koleo_weight).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        opt.step()
        sched.step()
        pending.append((step, loss.detach()))
        if step % train.log_every == 0 or step in evals:
            for s, value in pending:  # one device sync per log interval, not per step
                if s % train.log_every == 0 or s == steps:
                    point(s, "train_loss", float(value))
            last = float(pending[-1][1])
            if not math.isfinite(last):
                raise FloatingPointError(f"training loss became {last} at step {step}; lower train.lr")
            recent = (recent + [float(v) for _, v in pending])[-max(10, steps // 10):]
            pending = []
            elapsed = time.perf_counter() - t_train
            train_time_now = train_time + elapsed
            if progress:
                progress({"run_id": rid, "phase": "train", "step": step, "steps": steps, "loss": last,
                          "seq_per_s": step * batch / max(train_time_now, 1e-9)})
        if step in evals:
            train_time += time.perf_counter() - t_train
            if progress:
                progress({"run_id": rid, "phase": "eval", "step": step, "steps": steps})
            every_suite = step == steps or train.eval_during == "all"
            scored = suites if every_suite else [s for s in suites if s.name == MAIN_SUITE]
            metrics = zero_shot(model, scored, dev, amp, eval_batch)
            metrics["ssl_loss_heldout"] = heldout_loss(model, pool, cfg.frames, augment, train.temperature,
                                                       train.koleo_weight, dev, amp)
            for name, value in metrics.items():
                point(step, name, value)
            t_train = time.perf_counter()

    metrics["train_loss"] = float(np.mean(recent)) if recent else float("nan")
    wall = time.perf_counter() - started
    measured = {
        "wall_time_s": wall, "throughput": samples / max(train_time, 1e-9),
        "dtype": str(amp).replace("torch.", "") if amp is not None else "float32",
        "threads": torch.get_num_threads(), "versions": versions(), "git_sha": git_sha(), "host": platform.node(),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "compiled": bool(compile),
    }
    return RunResult(measured=measured, metrics=metrics, curves=curves, baseline=baseline)

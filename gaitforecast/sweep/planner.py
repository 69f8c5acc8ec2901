"""Expand a validated sweep spec into fully resolved run configs, each with its id (hash of the config).

Use :func:`plan` to get the runs of a spec, largest training compute first (so long runs do not trail at the
end of a sweep). A run's ``config`` holds everything that determines its results (architecture, width, data
fraction, seed, the pool and suites, the recipe, the augmentations, the model config) and nothing about how it
is executed (workers, threads, backend, device), so re-planning the same spec gives the same ids and a resumed
sweep recognises its finished runs. Counts that depend on the pool (training sequences, steps) follow
:func:`gaitforecast.train.config.train_counts`, which the training loop uses too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gaitforecast.errors import GaitforecastError
from gaitforecast.record import RunRecord, run_id
from gaitforecast.sweep.spec import SweepSpec, machine_memory
from gaitforecast.train.config import RunConfig, TrainSpec


@dataclass(frozen=True)
class PlannedRun:
    """One resolved run: its id, config (hashed) and planned sizes."""

    id: str
    config: dict[str, Any]
    arch: str
    width: int
    fraction: float
    seed: int
    unique_sequences: int
    steps: int
    samples: int
    flops: int
    params: int
    params_nonembed: int

    def label(self) -> str:
        return f"{self.arch} w{self.width} f{self.fraction:g} s{self.seed}"

    def record(self, threads: int | None = None, host: str | None = None) -> RunRecord:
        """The run's store record as planned (status running): id, config and sizes; training adds the rest."""
        return RunRecord(config=self.config, id=self.id, arch=self.arch, width=self.width, seed=self.seed,
                         params=self.params, params_nonembed=self.params_nonembed,
                         unique_sequences=self.unique_sequences, samples=self.samples, flops=self.flops,
                         threads=threads, host=host)


def run_config(spec: SweepSpec, arch: str, width: int, fraction: float, seed: int,
               train: TrainSpec) -> dict[str, Any]:
    """The resolved, hashable config of one run (a RunConfig's plain form)."""
    from gaitforecast.models import config_for

    model = config_for(arch, width, frames=spec.data.frames)
    return RunConfig(arch=arch, width=int(width), fraction=float(fraction), seed=int(seed), data=spec.data,
                     train=train, augment=spec.augment, model=model).to_dict()


MODEL_BYTES_PER_PARAM = 16  # fp32 weights + gradients + AdamW's two moments


def plan_one(config: dict[str, Any]) -> PlannedRun:
    """Sizes and id of one resolved config (also used by `gaitforecast train` for a single run)."""
    from gaitforecast.models import count_params
    from gaitforecast.models.flops import train_flops

    resolved = RunConfig.from_dict(config)
    model = resolved.model
    unique, _, steps, samples = resolved.counts()
    total, nonembed = count_params(model)  # on the meta device: no memory is allocated to count
    need = total * MODEL_BYTES_PER_PARAM
    if need > machine_memory():
        raise GaitforecastError(
            f"{config['arch']} width {config['width']} has {total:,} parameters: training it needs about "
            f"{need / 2**30:,.0f} GiB (weights, gradients, AdamW state), more than this machine's "
            f"{machine_memory() / 2**30:,.0f} GiB. Use smaller widths")
    return PlannedRun(
        id=run_id(config), config=config, arch=config["arch"], width=config["width"],
        fraction=config["fraction"], seed=config["seed"], unique_sequences=unique, steps=steps,
        samples=samples, flops=int(train_flops(model, samples)), params=int(total), params_nonembed=int(nonembed),
    )


LARGE_SWEEP = 1000  # more planned runs than this need an explicit yes (run-small --yes)


def count_runs(spec: SweepSpec) -> int:
    """How many runs ``spec`` plans at most (before de-duplication), without planning them."""
    return sum(len(b.widths) * len(b.fractions) * len(b.seeds or spec.seeds) for b in spec.grid)


def plan(spec: SweepSpec, allow_large: bool = True) -> list[PlannedRun]:
    """All runs of ``spec``, de-duplicated by id, largest training FLOPs first. With ``allow_large=False`` a spec
    of more than LARGE_SWEEP runs is refused before any is planned (the count comes from the grid alone)."""
    total = count_runs(spec)
    if not allow_large and total > LARGE_SWEEP:
        raise GaitforecastError(
            f"sweep {spec.name!r} plans {total:,} runs, more than {LARGE_SWEEP:,}; check the grid, or pass --yes "
            "to plan and run them all")
    runs: dict[str, PlannedRun] = {}
    for block in spec.grid:
        for width in block.widths:
            for fraction in block.fractions:
                for seed in block.seeds or spec.seeds:
                    run = plan_one(run_config(spec, block.arch, width, fraction, seed, block.train))
                    runs.setdefault(run.id, run)
    if not runs:
        raise GaitforecastError(f"sweep {spec.name!r} has no runs; add widths and fractions to a [[grid]] block")
    return sorted(runs.values(), key=lambda r: (-r.flops, r.id))


def summarize(runs: list[PlannedRun]) -> dict[str, Any]:
    """Totals of a plan: run count, FLOPs range (and its span in decades), sequences seen."""
    flops = [r.flops for r in runs]
    return {
        "runs": len(runs),
        "archs": sorted({r.arch for r in runs}),
        "flops_min": min(flops),
        "flops_max": max(flops),
        "flops_total": sum(flops),
        "compute_decades": math.log10(max(flops) / min(flops)) if min(flops) > 0 else None,
        "samples_total": sum(r.samples for r in runs),
    }

"""Sweep specs: a declarative TOML file listing the grid of pretraining runs, validated before anything runs.

Use :func:`load_profile` for the profiles shipped with the package (``quick``, ``default``, ``paper``) and
:func:`load_spec` for a user's file; both return a validated :class:`SweepSpec`. Any mistake raises
:class:`GaitforecastError` naming the field (e.g. ``grid[1].arch``) and the allowed values or range.

Layout (every section but ``[[grid]]`` optional; missing fields take the defaults below)::

    [sweep]    name, seeds = [0]
    [data]     pool_sequences, pool_frames, frames, heldout_sequences, suite_size = "quick"|"full"|"sweep", world_seed,
               pool_path = "" (real poses to pretrain on instead of the synthetic pool: an OpenGait pose folder or
               a .npz file; its first pool_sequences usable sequences are used), casia_b_path = "" (a CASIA-B
               pose tree scored zero-shot as the extra suite "casia-b", metrics "casia-b.rank1_mean" ...),
               pairs = "track"|"multicam" (what makes an SSL positive pair, see DataSpec), turn_rate,
               approach_rate (how much the synthetic pool's tracks change view)
    [train]    epochs | samples, batch_size, lr, weight_decay, warmup_fraction, grad_clip, temperature,
               koleo_weight, eval_points, eval_during = "all"|"main", log_every, precision = "auto"|"fp32"|"bf16"
    [augment]  the fields of data.augment.AugmentConfig
    [[grid]]   arch, widths = [...], fractions = [...], optional seeds and any [train] field as an override
    [slurm]    how `run-small --backend slurm` submits each run (see SlurmSpec); never part of a run's config

Every (grid block, width, fraction, seed) becomes one run; see :mod:`gaitforecast.sweep.planner`.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from gaitforecast.data.augment import AugmentConfig
from gaitforecast.errors import GaitforecastError
from gaitforecast.train.config import DataSpec, TrainSpec

PROFILES = ("quick", "default", "paper")
SUITE_SIZES = ("quick", "full", "sweep")  # sweep: about half of quick (cheap final evals)
PAIRS = ("track", "multicam")  # SSL positives: two windows of one track / one window from a second camera
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 autocast where models.runtime says the hardware pays
EVAL_DURING = ("all", "main")  # suites scored at the intermediate eval points (the final one scores all)


def _archs() -> tuple[str, ...]:
    from gaitforecast.models import ARCHS

    return tuple(ARCHS)


@dataclass(frozen=True)
class GridBlock:
    """A Cartesian block of runs: one architecture, several widths and data fractions, with overrides."""

    arch: str
    widths: tuple[int, ...]
    fractions: tuple[float, ...]
    seeds: tuple[int, ...] | None = None
    train: TrainSpec = field(default_factory=TrainSpec)


@dataclass(frozen=True)
class SlurmSpec:
    """Job settings of `run-small --backend slurm`: one Slurm job per run. How runs execute, not what they
    compute, so none of it enters a run's config or id (the same runs resume under any backend).

    ``cluster = "local"`` runs the jobs as processes on this machine through submitit's local executor (try a
    spec before queueing it); ``partition``, ``account``, ``qos`` empty: the cluster's defaults; ``time`` the
    limit per run in minutes; ``mem_gb`` 0: the partition's default; ``extra``: more sbatch options by their
    long name (``constraint = "a100"``); ``setup``: shell lines run before each job (``module load ...``).
    """

    cluster: str = "slurm"
    partition: str = ""
    time: int = 60
    gpus_per_run: int = 0
    cpus_per_run: int = 1
    mem_gb: float = 0.0
    account: str = ""
    qos: str = ""
    extra: tuple[tuple[str, str | int | float | bool], ...] = ()
    setup: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: shared data/train/augment settings and the grid blocks (+ Slurm job settings)."""

    name: str
    seeds: tuple[int, ...]
    data: DataSpec
    train: TrainSpec
    augment: AugmentConfig
    grid: tuple[GridBlock, ...]
    slurm: SlurmSpec = field(default_factory=SlurmSpec)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["grid"] = [
            {"arch": b.arch, "widths": list(b.widths), "fractions": list(b.fractions),
             "seeds": None if b.seeds is None else list(b.seeds), "train": asdict(b.train)}
            for b in self.grid
        ]
        return out


def machine_memory() -> int:
    """Physical memory of this machine in bytes (64 GiB where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 64 * 2**30


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _check_keys(where: str, table: Any, allowed: tuple[str, ...]) -> dict:
    if not isinstance(table, dict):
        raise GaitforecastError(f"spec {where} must be a table (section), got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            raise GaitforecastError(
                f"spec {where}: unknown field {key!r}; allowed fields: {', '.join(allowed)}"
            )
    return table


def _number(where: str, value: Any, *, integer: bool, lo: float, hi: float = math.inf,
            lo_open: bool = False) -> int | float:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a number"
        raise GaitforecastError(f"spec field {where} must be {kind}, got {value!r}")
    too_low = value <= lo if lo_open else value < lo
    if too_low or value > hi:
        left = "(" if lo_open else "["
        right = "]" if math.isfinite(hi) else ")"
        raise GaitforecastError(f"spec field {where} = {value!r} is out of range; allowed: {left}{lo}, {hi}{right}")
    return int(value) if integer else float(value)


def _choice(where: str, value: Any, allowed: tuple[str, ...], what: str = "spec field ") -> str:
    if value not in allowed:
        raise GaitforecastError(f"{what}{where} = {value!r} is not allowed; allowed values: {', '.join(allowed)}")
    return value


def _list(where: str, value: Any, *, integer: bool, lo: float, hi: float = math.inf,
          lo_open: bool = False) -> tuple:
    if not isinstance(value, list) or not value:
        raise GaitforecastError(f"spec field {where} must be a non-empty list, got {value!r}")
    items = tuple(_number(f"{where}[{i}]", v, integer=integer, lo=lo, hi=hi, lo_open=lo_open)
                  for i, v in enumerate(value))
    if len(set(items)) != len(items):
        raise GaitforecastError(f"spec field {where} has repeated values: {list(items)}")
    return items


def _real_path(where: str, value: Any) -> str:
    """A real-data path: must exist; stored absolute so the run id does not depend on the working folder."""
    if not isinstance(value, str):
        raise GaitforecastError(f"spec field {where} must be a path string, got {value!r}")
    if value == "":
        return ""
    path = Path(value).expanduser()
    if not path.exists():
        raise GaitforecastError(f"spec field {where} = {value!r} does not exist; give an OpenGait pose folder "
                                "or a .npz file (check it with `gaitforecast data-check PATH`)")
    return str(path.resolve())


def _data(table: dict) -> DataSpec:
    t = _check_keys("[data]", table, _names(DataSpec))
    base = DataSpec()
    kw: dict[str, Any] = {}
    for key in ("pool_sequences", "pool_frames", "frames", "heldout_sequences", "world_seed"):
        if key in t:
            lo = {"pool_sequences": 16, "pool_frames": 8, "frames": 4, "heldout_sequences": 4, "world_seed": 0}[key]
            hi = {"pool_sequences": 10**8, "pool_frames": 100_000, "frames": 10_000, "heldout_sequences": 10**7,
                  "world_seed": 2**31 - 1}[key]
            kw[key] = _number(f"data.{key}", t[key], integer=True, lo=lo, hi=hi)
    if "suite_size" in t:
        kw["suite_size"] = _choice("data.suite_size", t["suite_size"], SUITE_SIZES)
    if "pairs" in t:
        kw["pairs"] = _choice("data.pairs", t["pairs"], PAIRS)
    if "turn_rate" in t:
        kw["turn_rate"] = _number("data.turn_rate", t["turn_rate"], integer=False, lo=0, hi=720)
    if "approach_rate" in t:
        kw["approach_rate"] = _number("data.approach_rate", t["approach_rate"], integer=False, lo=0, hi=2)
    for key in ("pool_path", "casia_b_path"):
        if key in t:
            kw[key] = _real_path(f"data.{key}", t[key])
    data = replace(base, **kw)
    if data.frames > data.pool_frames:
        raise GaitforecastError(
            f"spec field data.frames = {data.frames} exceeds data.pool_frames = {data.pool_frames}; "
            "the model window must fit inside the pool's sequences"
        )
    pool_bytes = data.pool_sequences * data.pool_frames * 18 * 2 * 4 * 2  # float32 poses, two cameras
    if pool_bytes > machine_memory() // 2:
        raise GaitforecastError(
            f"spec fields data.pool_sequences = {data.pool_sequences:,} x data.pool_frames = {data.pool_frames:,} "
            f"make a pool of about {pool_bytes / 2**30:,.1f} GiB, over half of this machine's "
            f"{machine_memory() / 2**30:,.0f} GiB; use fewer or shorter sequences")
    if data.heldout_sequences * 2 > data.pool_sequences:
        raise GaitforecastError(
            f"spec field data.heldout_sequences = {data.heldout_sequences} must be at most half of "
            f"data.pool_sequences = {data.pool_sequences}"
        )
    return data


_TRAIN_RULES: dict[str, dict[str, Any]] = {
    "epochs": dict(integer=False, lo=0, lo_open=True, hi=10_000),
    "samples": dict(integer=True, lo=2),
    "batch_size": dict(integer=True, lo=2, hi=65_536),
    "lr": dict(integer=False, lo=0, lo_open=True, hi=1.0),
    "weight_decay": dict(integer=False, lo=0, hi=10.0),
    "warmup_fraction": dict(integer=False, lo=0, hi=0.9),
    "grad_clip": dict(integer=False, lo=0, lo_open=True),
    "temperature": dict(integer=False, lo=0, lo_open=True, hi=10.0),
    "koleo_weight": dict(integer=False, lo=0, hi=10.0),
    "eval_points": dict(integer=True, lo=0, hi=50),
    "log_every": dict(integer=True, lo=1),
}


_TRAIN_CHOICES: dict[str, tuple[str, ...]] = {"precision": PRECISIONS, "eval_during": EVAL_DURING}
_TRAIN_FIELDS = tuple(_TRAIN_RULES) + tuple(_TRAIN_CHOICES)


def _train(table: dict, where: str, base: TrainSpec) -> TrainSpec:
    kw: dict[str, Any] = {}
    for key, value in table.items():
        if key in _TRAIN_RULES:
            kw[key] = _number(f"{where}.{key}", value, **_TRAIN_RULES[key])
        elif key in _TRAIN_CHOICES:
            kw[key] = _choice(f"{where}.{key}", value, _TRAIN_CHOICES[key])
    if "epochs" in kw and "samples" in kw:
        raise GaitforecastError(f"spec {where}: give either epochs or samples, not both")
    if "samples" in kw:
        kw["epochs"] = None
    elif "epochs" in kw:
        kw["samples"] = None
    return replace(base, **kw)


def _augment(table: dict) -> AugmentConfig:
    t = _check_keys("[augment]", table, AugmentConfig.field_names())
    kw = {k: _number(f"augment.{k}", v, integer=False, lo=0) for k, v in t.items()}
    return AugmentConfig(**kw)


def _grid(blocks: Any, train: TrainSpec) -> tuple[GridBlock, ...]:
    if not isinstance(blocks, list) or not blocks:
        raise GaitforecastError("spec needs at least one [[grid]] block with arch, widths and fractions")
    allowed = ("arch", "widths", "fractions", "seeds") + _TRAIN_FIELDS
    out = []
    for i, block in enumerate(blocks):
        where = f"grid[{i}]"
        b = _check_keys(where, block, allowed)
        for key in ("arch", "widths", "fractions"):
            if key not in b:
                raise GaitforecastError(f"spec {where} is missing the field {key!r}")
        arch = _choice(f"{where}.arch", b["arch"], _archs())
        widths = _list(f"{where}.widths", b["widths"], integer=True, lo=1, hi=4096)
        fractions = _list(f"{where}.fractions", b["fractions"], integer=False, lo=0, lo_open=True, hi=1.0)
        seeds = _list(f"{where}.seeds", b["seeds"], integer=True, lo=0, hi=2**31 - 1) if "seeds" in b else None
        out.append(GridBlock(arch, widths, fractions, seeds, _train(b, where, train)))
    return tuple(out)


SLURM_CLUSTERS = ("slurm", "local")
_SLURM_NUMBERS: dict[str, dict[str, Any]] = {
    "time": dict(integer=True, lo=1, hi=365 * 24 * 60),
    "gpus_per_run": dict(integer=True, lo=0, hi=64),
    "cpus_per_run": dict(integer=True, lo=1, hi=1024),
    "mem_gb": dict(integer=False, lo=0, hi=65_536),
}


def _slurm(table: dict) -> SlurmSpec:
    t = _check_keys("[slurm]", table, _names(SlurmSpec))
    kw: dict[str, Any] = {k: _number(f"slurm.{k}", v, **_SLURM_NUMBERS[k]) for k, v in t.items()
                          if k in _SLURM_NUMBERS}
    if "cluster" in t:
        kw["cluster"] = _choice("slurm.cluster", t["cluster"], SLURM_CLUSTERS)
    for key in ("partition", "account", "qos"):
        if key in t:
            if not isinstance(t[key], str) or any(c.isspace() for c in t[key]):
                raise GaitforecastError(f"spec field slurm.{key} must be a name without spaces, got {t[key]!r}")
            kw[key] = t[key]
    if "extra" in t:
        extra = t["extra"]
        if not isinstance(extra, dict):
            raise GaitforecastError(f"spec field slurm.extra must be a table of sbatch options, e.g. "
                                    f'{{ constraint = "a100" }}, got {extra!r}')
        for key, value in extra.items():
            if not isinstance(value, (str, int, float, bool)):
                raise GaitforecastError(f"spec field slurm.extra.{key} must be a string, number or boolean, "
                                        f"got {value!r}")
        kw["extra"] = tuple(sorted(extra.items()))
    if "setup" in t:
        if not isinstance(t["setup"], list) or not all(isinstance(line, str) for line in t["setup"]):
            raise GaitforecastError(f"spec field slurm.setup must be a list of shell lines, got {t['setup']!r}")
        kw["setup"] = tuple(t["setup"])
    return SlurmSpec(**kw)


def validate(raw: dict[str, Any], default_name: str = "custom") -> SweepSpec:
    """Check a parsed spec (dict from TOML) and fill in defaults; raise GaitforecastError on the first problem."""
    top = _check_keys("top level", raw, ("sweep", "data", "train", "augment", "grid", "slurm"))
    sweep = _check_keys("[sweep]", top.get("sweep", {}), ("name", "seeds", "description"))
    name = sweep.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise GaitforecastError(f"spec field sweep.name must be a non-empty string, got {name!r}")
    seeds = _list("sweep.seeds", sweep.get("seeds", [0]), integer=True, lo=0, hi=2**31 - 1)
    data = _data(top.get("data", {}))
    train = _train(_check_keys("[train]", top.get("train", {}), _TRAIN_FIELDS), "train", TrainSpec())
    augment = _augment(top.get("augment", {}))
    return SweepSpec(name, seeds, data, train, augment, _grid(top.get("grid"), train), _slurm(top.get("slurm", {})))


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GaitforecastError(f"spec {source} is not valid TOML: {exc}") from None


def load_spec(path: Path | str) -> SweepSpec:
    """Read and validate a sweep spec TOML file."""
    p = Path(path)
    if not p.is_file():
        raise GaitforecastError(f"spec file {p} does not exist; pass a TOML file or use --profile {'|'.join(PROFILES)}")
    return validate(parse_toml(p.read_text(encoding="utf-8"), str(p)), default_name=p.stem)


def profile_text(name: str) -> str:
    """The TOML text of a shipped profile."""
    _choice("--profile", name, PROFILES, what="")
    return resources.files("gaitforecast.sweep").joinpath("profiles", f"{name}.toml").read_text(encoding="utf-8")


def load_profile(name: str) -> SweepSpec:
    """The shipped profile ``quick`` (CI-sized), ``default`` (a real small sweep) or ``paper`` (workstation/GPU)."""
    return validate(parse_toml(profile_text(name), f"profile {name!r}"), default_name=name)

"""What one run is, as validated dataclasses: the data it sees (:class:`DataSpec`), its recipe (:class:`TrainSpec`),
and the whole resolved run (:class:`RunConfig`: those two, the augmentations and the model config).

A run travels as ``RunConfig.to_dict()`` (plain JSON: its id is the hash of that dict, and workers receive it
pickled) and is read back with :meth:`RunConfig.from_dict`, so the training code reads ``run.train.lr``, never
``config["train"]["lr"]``. :func:`train_counts` turns a run's data fraction into sequences and steps; the
planner (to cost a run before it trains) and the training loop both use it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from gaitforecast.data.augment import AugmentConfig
from gaitforecast.errors import GaitforecastError
from gaitforecast.models.config import ModelConfig

# Bump when the meaning of a config changes (recipe code, data pipeline), so old ids are not reused.
RECIPE_VERSION = 2  # 2: track / multi-camera positive pairs; held-out loss on the run's own pairs


@dataclass(frozen=True)
class DataSpec:
    """Which pretraining pool and evaluation suites the runs use (part of every run's identity).

    ``pairs`` says what an SSL positive pair is, on top of the augmentations:

    - ``"track"``: two random windows of one pool sequence. It assumes a sequence is one person's *track* whose
      view may change along it (a walker turning or passing the camera; real tracklets do this). The synthetic
      pool's tracks turn at up to ``turn_rate`` deg/s and drift in distance by up to ``approach_rate`` (log per
      second); on real data a sequence file (an OpenGait ``<id>/<type>/<view>`` folder) is one track, so this
      works unchanged and needs no labels. Use ``pool_frames`` well above ``frames`` so the windows differ.
    - ``"multicam"``: one window of the track and one of the *same walk seen by another camera*. The synthetic
      pool renders every track from a second camera; a real pool needs several views of one walk (an
      OpenGait tree with the same ``<id>/<type>`` under several ``<view>`` folders, as multi-view sets record
      them); sequences without a second view fall back to track pairs (counted in the run's pool manifest).
    """

    pool_sequences: int = 2048
    pool_frames: int = 60
    frames: int = 30
    heldout_sequences: int = 128
    suite_size: str = "quick"
    world_seed: int = 0
    pool_path: str = ""
    casia_b_path: str = ""
    pairs: str = "track"
    turn_rate: float = 0.0
    approach_rate: float = 0.0


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation recipe of one run. Give ``epochs`` or ``samples`` (sequences seen), not both."""

    epochs: float | None = 4.0
    samples: int | None = None
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    temperature: float = 0.1
    koleo_weight: float = 0.01
    eval_points: int = 2
    eval_during: str = "all"
    log_every: int = 10
    precision: str = "auto"


def _section(cls: type, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise GaitforecastError(f"unknown {where} keys {unknown} in a run config; expected a subset of {sorted(names)}")
    return cls(**values)


@dataclass(frozen=True)
class RunConfig:
    """One resolved run: everything that determines its results and nothing about how it executes."""

    arch: str
    width: int
    fraction: float
    seed: int
    data: DataSpec
    train: TrainSpec
    augment: AugmentConfig
    model: ModelConfig
    recipe: int = RECIPE_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The plain form that is hashed into the run id and stored with the run."""
        return {"recipe": self.recipe, "arch": self.arch, "width": int(self.width), "fraction": float(self.fraction),
                "seed": int(self.seed), "data": asdict(self.data), "train": asdict(self.train),
                "augment": self.augment.to_dict(), "model": self.model.to_dict()}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "RunConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error, so a stale config fails loudly."""
        try:
            return cls(arch=str(config["arch"]), width=int(config["width"]), fraction=float(config["fraction"]),
                       seed=int(config["seed"]), data=_section(DataSpec, config["data"], "data"),
                       train=_section(TrainSpec, config["train"], "train"),
                       augment=_section(AugmentConfig, config["augment"], "augment"),
                       model=ModelConfig.from_dict(config["model"]), recipe=int(config.get("recipe", RECIPE_VERSION)))
        except KeyError as exc:
            raise GaitforecastError(f"a run config lacks {exc.args[0]!r}; plan runs with gaitforecast.sweep") from None

    def counts(self) -> tuple[int, int, int, int]:
        """(unique training sequences, batch size, steps, sequences seen): see :func:`train_counts`."""
        return train_counts(self.data, self.train, self.fraction)


def train_counts(data: Mapping[str, Any] | DataSpec, train: Mapping[str, Any] | TrainSpec,
                 fraction: float) -> tuple[int, int, int, int]:
    """(unique training sequences, batch size, steps, sequences seen) of a run.

    The training set is ``round(fraction * (pool_sequences - heldout_sequences))`` sequences (the held-out slice
    is never trained on); every step sees a full batch, so sequences seen = steps x batch.
    """
    d = asdict(data) if isinstance(data, DataSpec) else data
    t = asdict(train) if isinstance(train, TrainSpec) else train
    usable = d["pool_sequences"] - d["heldout_sequences"]
    unique = max(2, int(round(fraction * usable)))
    batch = min(int(t["batch_size"]), unique)
    wanted = t["samples"] if t.get("samples") else t["epochs"] * unique
    steps = max(1, int(math.floor(wanted / batch + 1e-9)))
    return unique, batch, steps, steps * batch

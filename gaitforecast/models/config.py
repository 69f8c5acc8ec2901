"""Model configurations: one dataclass for every architecture, and the width-scaled families.

A family is one architecture at fixed depth whose size is set by a single width knob (``width``):
GaitPT's first-stage width (the four stages are ``width * [1, 2, 4, 8]``) or GaitFormer's ``d_model``.
Use :func:`config_for` to get a member of a family; build it with ``gaitforecast.models.build_model``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from gaitforecast.errors import GaitforecastError
from gaitforecast.models.families import ARCHS, FAMILIES, family  # noqa: F401  (ARCHS: re-exported)

# The sweep's default ladder and muP base width of each family (see models.families).
FAMILY_WIDTHS: dict[str, tuple[int, ...]] = {name: f.widths for name, f in FAMILIES.items()}
BASE_WIDTHS: dict[str, int] = {name: f.base_width for name, f in FAMILIES.items()}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that determines a model's shapes and parametrisation (hashable, JSON-able).

    ``style`` "v2" = parallel attention+MLP blocks, RMSNorm, SwiGLU, no biases, RoPE over frames;
    "v1" = the original GaitPT block (sequential pre-norm, LayerNorm, GELU MLP x4, biases, learned
    positional embeddings, dropout).
    """

    arch: str
    width: int
    frames: int = 60
    depth: int = 3  # GaitPT: layers per spatial and per temporal module; GaitFormer: layers
    heads: tuple[int, ...] = (1, 2, 4, 8)  # per GaitPT stage, or (heads,) for GaitFormer
    style: str = "v2"
    mlp_ratio: float = 8 / 3  # MLP hidden = ratio * d (rounded up to a multiple of 8 for SwiGLU)
    embed_dim: int = 0  # E of model.embed; 0 = the last stage's width (scales with width)
    proj_dim: int = 128  # P: the SSL projection head's output
    dropout: float = 0.0
    mup: bool = True
    base_width: int = 8
    joints: int = 18
    channels: int = 2
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def width_mult(self) -> float:
        """Width relative to the muP base width (1.0 at the base)."""
        return self.width / self.base_width

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Width of each stage (GaitPT: four; GaitFormer: one), as the family declares."""
        return family(self.arch).stage_widths(self.width)

    @property
    def embedding_dim(self) -> int:
        """E, the size of model.embed's output."""
        return self.embed_dim or self.stage_dims[-1]

    def mlp_hidden(self, dim: int) -> int:
        hidden = self.mlp_ratio * dim
        if self.style == "v1":
            return int(round(hidden))
        return 8 * math.ceil(hidden / 8 - 1e-9)  # a multiple of 8 keeps matmuls aligned

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["heads"] = list(self.heads)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict` (unknown keys are an error, so stale configs fail loudly)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise GaitforecastError(f"unknown model config keys {sorted(unknown)}; expected a subset of {sorted(names)}")
        d = dict(d)
        if "heads" in d:
            d["heads"] = tuple(d["heads"])
        cfg = cls(**d)
        validate_config(cfg)
        return cfg


def config_for(arch: str, width: int, frames: int = 60, **overrides: Any) -> ModelConfig:
    """The member of ``arch``'s family at ``width`` (see FAMILY_WIDTHS), with optional field overrides.

    ``config_for("gaitpt-v1", 32)`` is the published GaitPT (4,498,784 encoder parameters at T = 60).
    """
    fam = family(arch)
    base = {**fam.defaults, "base_width": fam.base_width, **overrides}
    cfg = ModelConfig(arch=arch, width=int(width), frames=int(frames), **base)
    validate_config(cfg)
    return cfg


def validate_config(cfg: ModelConfig) -> None:
    """Raise GaitforecastError naming the problem if the config cannot be built."""
    fam = family(cfg.arch)
    if cfg.style not in ("v1", "v2"):
        raise GaitforecastError(f"style must be 'v1' or 'v2', got {cfg.style!r}")
    if cfg.width < 1 or cfg.frames < 1 or cfg.depth < 1:
        raise GaitforecastError(f"width, frames and depth must be positive, got {cfg.width}, {cfg.frames}, {cfg.depth}")
    n_modules = len(fam.stage_multipliers)
    if len(cfg.heads) != n_modules:
        raise GaitforecastError(f"{cfg.arch} needs {n_modules} head counts (one per stage), got {cfg.heads}")
    for dim, h in zip(cfg.stage_dims, cfg.heads):
        if h < 1 or dim % h:
            raise GaitforecastError(
                f"{cfg.arch} width {cfg.width}: stage width {dim} is not divisible by {h} heads; "
                f"pick a width from {fam.widths} or change heads"
            )
        if cfg.style == "v2" and (dim // h) % 2:
            raise GaitforecastError(
                f"{cfg.arch} width {cfg.width}: head size {dim // h} is odd but RoPE needs an even head size; "
                "use an even width"
            )

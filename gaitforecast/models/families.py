"""The model families, one entry each: what the rest of the package asks of an architecture.

A :class:`Family` names its default width ladder, its muP base width, the :class:`ModelConfig` fields it
differs in, its stage widths, its model class and its FLOP formula. Config building, validation, FLOP accounting,
model building and the CLI's choices all read this table; nothing else compares architecture names.

Adding a family: write the model (a ``models.blocks.Encoder`` subclass that declares ``is_embedding_param``),
its forward-FLOP formula (in ``models.flops``, checked against torch's FLOP counter by tests/test_flops.py), then
one :class:`Family` entry below. The model class and formula are named as ``"module:attribute"`` and loaded on
first use, so this table (and the CLI) never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from gaitforecast.errors import GaitforecastError


@dataclass(frozen=True)
class Family:
    """One width-scaled architecture: a single ``width`` knob sets every size (depth fixed)."""

    name: str
    widths: tuple[int, ...]  # the sweep's default ladder
    base_width: int  # muP: hyperparameters are tuned at this width and transferred
    stage_multipliers: tuple[int, ...]  # stage widths = width x these (one stage: (1,))
    model_class: str  # "module:Class", loaded on first use (torch)
    forward_flops: str  # "module:function" of a ModelConfig: encoder forward FLOPs per sequence, without head
    defaults: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields this family sets
    description: str = ""

    def stage_widths(self, width: int) -> tuple[int, ...]:
        return tuple(width * m for m in self.stage_multipliers)

    def load(self, what: str) -> Any:
        """The family's model class (``"model_class"``) or FLOP formula (``"forward_flops"``)."""
        module, _, name = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), name)

    def flops(self, cfg: Any) -> int:
        formula: Callable[[Any], int] = self.load("forward_flops")
        return formula(cfg)


FAMILIES: dict[str, Family] = {
    "gaitpt": Family(
        name="gaitpt", widths=(8, 12, 16, 24, 32), base_width=8, stage_multipliers=(1, 2, 4, 8),
        model_class="gaitforecast.models.gaitpt:GaitPT", forward_flops="gaitforecast.models.flops:gaitpt_flops",
        defaults=dict(heads=(1, 2, 4, 8), style="v2", mlp_ratio=8 / 3, dropout=0.0, mup=True),
        description="GaitPT v2: hierarchical spatial/temporal stages, parallel blocks, SwiGLU, RoPE (scaled)"),
    "gaitpt-v1": Family(
        name="gaitpt-v1", widths=(8, 16, 24, 32), base_width=8, stage_multipliers=(1, 2, 4, 8),
        model_class="gaitforecast.models.gaitpt:GaitPT", forward_flops="gaitforecast.models.flops:gaitpt_flops",
        defaults=dict(heads=(8, 8, 8, 8), style="v1", mlp_ratio=4.0, dropout=0.05, mup=False),
        description="the published GaitPT (width 32: 4,498,784 encoder parameters at T = 60)"),
    "gaitformer": Family(
        name="gaitformer", widths=(64, 96, 128, 192, 256), base_width=64, stage_multipliers=(1,),
        model_class="gaitforecast.models.gaitformer:GaitFormer",
        forward_flops="gaitforecast.models.flops:gaitformer_flops",
        defaults=dict(heads=(4,), style="v2", mlp_ratio=8 / 3, depth=4, dropout=0.0, mup=True),
        description="GaitFormer: one transformer over frames (joints flattened per frame)"),
}
ARCHS: tuple[str, ...] = tuple(FAMILIES)


def family(arch: str) -> Family:
    """The family called ``arch``, or an error listing the known ones."""
    try:
        return FAMILIES[arch]
    except KeyError:
        raise GaitforecastError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}") from None

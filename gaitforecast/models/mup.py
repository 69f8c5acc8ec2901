"""Maximal-update parametrisation (muP, Tensor Programs V), written for these models; no `mup` package.

Use it so a learning rate tuned at the family's base width transfers to every wider member. With
m = width / base_width:

- attention logits scale as 1/d_head (sqrt(base d_head)/d_head, equal to 1/sqrt(d_head) at the base);
- the readout (last layer of the SSL head) multiplies its input by 1/m, its weight starts with
  variance m/fan_in, and query projections start at zero;
- AdamW: hidden matrices (both dimensions grow with width) get lr/m and weight decay x m (so the
  decoupled decay lr*wd is unchanged, as in the `mup` package's MuAdamW); input weights, the readout,
  norms, biases, positional and CLS parameters keep the base lr.

Whether a dimension "grows with width" is read off the shapes of the same config built at the base
width on the meta device, so any new layer is classified without a hand-kept list.
:func:`gaitforecast.models.coordcheck.coord_check` verifies the whole thing: activation sizes stay flat across
widths under muP.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from gaitforecast.errors import GaitforecastError
from gaitforecast.models.config import ModelConfig


def attention_scale(cfg: ModelConfig, head_dim: int) -> float:
    """Softmax temperature: 1/sqrt(d_head) under SP, sqrt(base d_head)/d_head under muP."""
    if not cfg.mup:
        return head_dim**-0.5
    base_head_dim = head_dim / cfg.width_mult
    return base_head_dim**0.5 / head_dim


def readout_mult(cfg: ModelConfig) -> float:
    """Multiplier on the readout's input: 1/m under muP, 1 under SP."""
    return 1.0 / cfg.width_mult if cfg.mup else 1.0


def init_parameters(model: nn.Module, cfg: ModelConfig, generator: torch.Generator | None = None) -> None:
    """Initialise every parameter: Linear weights N(0, 1/fan_in), biases 0, norm gains 1,
    positional/CLS parameters N(0, 0.02); muP adds the readout and zero-query rules above.

    Modules declare their muP roles rather than being found by attribute name: a module with a
    ``mup_readout()`` method names its readout Linear, one with ``mup_query_weight()`` returns the weight rows
    that produce attention queries (a view, zeroed in place)."""
    readouts = {id(m.mup_readout()) for m in model.modules() if hasattr(m, "mup_readout")} if cfg.mup else set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            with torch.no_grad():
                if isinstance(module, nn.Linear) and name == "weight":
                    std = p.shape[1] ** -0.5
                    if id(module) in readouts:
                        std *= cfg.width_mult**0.5
                    p.normal_(0.0, std, generator=generator)
                elif name == "bias":
                    p.zero_()
                elif p.ndim == 1 and "norm" in type(module).__name__.lower():
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, 0.02, generator=generator)
    if cfg.mup:
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "mup_query_weight"):
                    module.mup_query_weight().zero_()


def _base_shapes(model: nn.Module, cfg: ModelConfig, base_width: int) -> dict[str, torch.Size]:
    """Parameter shapes of the same model class and config at the base width (built on the meta device)."""
    base_cfg = dataclasses.replace(cfg, width=base_width)
    with torch.device("meta"):
        base = type(model)(base_cfg)
    return {name: p.shape for name, p in base.named_parameters()}


def param_groups(model: nn.Module, cfg: ModelConfig, lr: float, weight_decay: float,
                 base_width: int | None = None) -> list[dict]:
    """AdamW parameter groups: per-width learning rates under muP, decay only on Linear weights.

    ``torch.optim.AdamW(param_groups(model, cfg, lr=1e-3, weight_decay=0.05))``. Each group carries a
    ``"group"`` name (hidden / vector_decay / no_decay) and ``"lr_mult"`` so schedulers can scale relatively.
    """
    base_width = base_width or cfg.base_width
    width_mult = cfg.width / base_width if cfg.mup else 1.0
    base_shapes = _base_shapes(model, cfg, base_width) if cfg.mup else {}
    groups: dict[str, list] = {"hidden": [], "vector_decay": [], "no_decay": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays = p.ndim == 2 and name.endswith("weight")
        if cfg.mup and name not in base_shapes:
            raise GaitforecastError(f"parameter {name} has no counterpart at base width {base_width}")
        grows = [a != b for a, b in zip(p.shape, base_shapes.get(name, p.shape))]
        if cfg.mup and p.ndim == 2 and all(grows):
            groups["hidden"].append(p)
        else:
            groups["vector_decay" if decays else "no_decay"].append(p)
    settings = {
        "hidden": (1.0 / width_mult, weight_decay * width_mult),
        "vector_decay": (1.0, weight_decay),
        "no_decay": (1.0, 0.0),
    }
    return [
        {"params": ps, "lr": lr * settings[g][0], "weight_decay": settings[g][1], "group": g, "lr_mult": settings[g][0]}
        for g, ps in groups.items() if ps
    ]

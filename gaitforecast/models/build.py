"""Building and counting models (torch); re-exported lazily by ``gaitforecast.models``."""

from __future__ import annotations

import torch
import torch.nn as nn

from gaitforecast.errors import GaitforecastError
from gaitforecast.models.config import ModelConfig
from gaitforecast.models.families import family
from gaitforecast.models.mup import init_parameters


def _model_class(cfg: ModelConfig) -> type[nn.Module]:
    return family(cfg.arch).load("model_class")


def build_model(cfg: ModelConfig, seed: int | None = None) -> nn.Module:
    """Build and initialise the model for ``cfg`` on CPU; the same seed gives identical weights."""
    if not isinstance(cfg, ModelConfig):
        raise GaitforecastError(f"build_model needs a ModelConfig (see config_for), got {type(cfg).__name__}")
    with torch.device("meta"):  # no wasted default init: every tensor is initialised once below
        model = _model_class(cfg)(cfg)
    model = model.to_empty(device="cpu")
    for module in model.modules():  # buffers that are computed, not learned (rotary tables)
        if hasattr(module, "reset_buffers"):
            module.reset_buffers()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    init_parameters(model, cfg, generator)
    return model


def count_params(model_or_cfg: nn.Module | ModelConfig, include_head: bool = False) -> tuple[int, int]:
    """(total, non_embedding) parameter counts of the encoder.

    The SSL projection head is excluded unless ``include_head`` (it is discarded after pre-training and
    the published 4,498,784 for GaitPT counts the encoder only). "Embedding" parameters (Kaplan) are the
    input projection of raw coordinates and the positional/CLS parameters.
    """
    if isinstance(model_or_cfg, ModelConfig):
        with torch.device("meta"):
            model = _model_class(model_or_cfg)(model_or_cfg)
    else:
        model = model_or_cfg
    total = embedding = 0
    for name, p in model.named_parameters():
        if name.startswith("head.") and not include_head:
            continue
        total += p.numel()
        if model.is_embedding_param(name):
            embedding += p.numel()
    return total, total - embedding

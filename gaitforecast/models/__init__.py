"""Model families for the scaling study: GaitPT v2 (and the original GaitPT), GaitFormer.

    cfg = config_for("gaitpt", width=16)            # a member of a width-scaled family
    model = build_model(cfg, seed=0)
    z = model(x)                                    # x [B, T, 18, 2] -> SSL projection [B, 128]
    e = model.embed(x)                              # L2-normalised embedding [B, E]
    total, non_embedding = count_params(cfg)        # encoder parameters (SSL head excluded)

FLOPs: models.flops.forward_flops / train_flops / family_table; muP: models.mup; CPU speed: models.runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

from gaitforecast.models.config import ARCHS, BASE_WIDTHS, FAMILY_WIDTHS, ModelConfig, config_for

__all__ = [
    "ARCHS", "BASE_WIDTHS", "FAMILY_WIDTHS", "ModelConfig", "config_for", "build_model", "count_params",
    "family_table", "forward_flops", "train_flops",
]

# Names that need torch load on first use, so `import gaitforecast.models` (and the CLI, and the analysis
# engine's cost model) stay free of torch's ~1 s import until a model is really built.
_LAZY = {
    "build_model": "build", "count_params": "build", "_model_class": "build",
    "GaitPT": "gaitpt", "GaitFormer": "gaitformer",
    "family_table": "flops", "forward_flops": "flops", "train_flops": "flops",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"gaitforecast.models.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gaitforecast.models' has no attribute {name!r}")

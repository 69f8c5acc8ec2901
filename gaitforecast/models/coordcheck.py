"""The muP coordinate check: mean |activation| of each module over the first training steps, at several widths.

Under muP (:mod:`gaitforecast.models.mup`) a module's activation size stays about the same at every width; under
standard parametrisation ('sp') hidden activations grow with width after the first update. `gaitforecast
mup-check` prints :func:`coord_summary` of :func:`coord_check` and can store the table for the dashboard.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn as nn

from gaitforecast.errors import GaitforecastError
from gaitforecast.models.build import build_model
from gaitforecast.models.config import config_for
from gaitforecast.models.mup import param_groups


def coord_check(arch: str, widths: tuple[int, ...] | list[int], steps: int = 4, parametrization: str = "mup",
                lr: float = 1e-2, batch: int = 8, frames: int = 16, seeds: int = 2) -> pd.DataFrame:
    """Coordinate check: mean |activation| of each module over the first training steps at each width.

    Returns rows (parametrization, width, step, module, l1), l1 averaged over ``seeds`` initialisations
    (narrow layers are noisy from one draw). Under muP the l1 of a module at a given
    step is roughly the same at every width; under SP ('sp') hidden activations grow with width after the
    first update. The loss is MSE of the SSL projection to a fixed random target (width-independent, so
    only the parametrisation differs between widths); AdamW at a deliberately large lr.
    """
    if parametrization not in ("mup", "sp"):
        raise GaitforecastError(f"parametrization must be 'mup' or 'sp', got {parametrization!r}")
    rows = []
    for seed in range(seeds):
        data = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, frames, 18, 2, generator=data) * 0.5
        target = torch.randn(batch, 128, generator=data)
        for width in widths:
            cfg = config_for(arch, width, frames=frames, mup=parametrization == "mup", dropout=0.0, proj_dim=128)
            model = build_model(cfg, seed=seed)
            opt = torch.optim.AdamW(param_groups(model, cfg, lr=lr, weight_decay=0.0))
            records: dict[str, float] = {}
            hooks = [m.register_forward_hook(_l1_hook(records, name)) for name, m in _watched(model)]
            for step in range(steps):
                records.clear()
                loss = ((model(x) - target) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rows += [dict(width=width, step=step, module=k, l1=v) for k, v in records.items()]
            for h in hooks:
                h.remove()
    table = pd.DataFrame(rows).groupby(["width", "step", "module"], as_index=False, sort=True)["l1"].mean()
    table.insert(0, "parametrization", parametrization)
    return table


def _watched(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose outputs the coordinate check follows: merges, blocks, stack outputs, embedding, head."""
    kinds = ("Stack", "ParallelBlock", "SequentialBlock", "ProjectionHead")
    return [(name, m) for name, m in model.named_modules()
            if type(m).__name__ in kinds or name.endswith(("merge", "frame_in", "to_embedding"))]


def _l1_hook(records: dict[str, float], name: str):
    def hook(module: nn.Module, args, output: torch.Tensor) -> None:
        records[name] = output.detach().float().abs().mean().item()
    return hook


def coord_summary(table: pd.DataFrame, step: int | None = None) -> pd.DataFrame:
    """Per module at ``step`` (default: the last): l1 at each width and ratio = max/min across widths.

    muP is working when the ratio stays near 1 for every hidden module (the SSL head's output may move with
    the loss); under SP the ratio grows with the width range.
    """
    step = int(table["step"].max()) if step is None else step
    wide = table[table["step"] == step].pivot(index="module", columns="width", values="l1")
    wide.columns = [f"l1_w{w}" for w in wide.columns]
    wide["ratio"] = wide.max(axis=1) / wide.min(axis=1)
    return wide.reset_index()

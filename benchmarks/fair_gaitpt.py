"""A fair original GaitPT for speed comparisons, built the way the released GaitPT code is built.

torch's own ``nn.TransformerEncoder`` / ``nn.TransformerEncoderLayer`` (pre-norm, GELU MLP x4, biases, dropout,
8 heads), einops rearranges between the spatial and temporal layouts, learned positions and a CLS token per
temporal sequence, fp32. Same stages, widths and parameter count as ``config_for("gaitpt-v1", 32)``; written
here from torch's modules (not copied from the authors' repository) so ``bench_models.py`` can put today's v2
beside an original that uses torch's tuned layers rather than gaitforecast's own v1 code path.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange

from gaitforecast.skeleton import GAITPT_MERGE, GAITPT_STAGE_TOKENS


def _encoder(dim: int, heads: int, depth: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False)


class FairStage(nn.Module):
    def __init__(self, in_dim: int, dim: int, n_tokens: int, merge: int, frames: int, last: bool,
                 heads: int = 8, depth: int = 3, dropout: float = 0.05):
        super().__init__()
        self.n_tokens = n_tokens
        self.merge = nn.Linear(merge * in_dim, dim)
        self.spatial_pos = None if last else nn.Parameter(torch.zeros(n_tokens, dim))
        self.spatial = None if last else _encoder(dim, heads, depth, dropout)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.temporal_pos = nn.Parameter(torch.zeros(frames + 1, dim))
        self.temporal = _encoder(dim, heads, depth, dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = x.shape[:2]
        x = self.merge(rearrange(x, "b t (n m) d -> b t n (m d)", n=self.n_tokens))
        if self.spatial is not None:
            h = rearrange(x + self.spatial_pos, "b t n d -> (b t) n d")
            x = rearrange(h + self.spatial(h), "(b t) n d -> b t n d", b=b)
        h = rearrange(x, "b t n d -> (b n) t d")
        seq = torch.cat((self.cls.expand(h.shape[0], -1, -1), h), dim=1) + self.temporal_pos
        out = self.temporal(seq)
        cls_out = rearrange(out[:, 0], "(b n) d -> b (n d)", b=b)
        x = rearrange(h + out[:, 1:], "(b n) t d -> b t n d", b=b)
        return x, cls_out


class FairGaitPT(nn.Module):
    """Input [B, T, 18, 2] in GaitPT order -> SSL projection [B, 128]."""

    def __init__(self, width: int = 32, frames: int = 60, proj_dim: int = 128, dropout: float = 0.05):
        super().__init__()
        dims = [width * m for m in (1, 2, 4, 8)]
        ins = [2] + dims[:-1]
        last = len(dims) - 1
        self.stages = nn.ModuleList(
            FairStage(ins[i], dims[i], GAITPT_STAGE_TOKENS[i], GAITPT_MERGE[i], frames, i == last, dropout=dropout)
            for i in range(len(dims)))
        self.to_embedding = nn.Linear(sum(n * d for n, d in zip(GAITPT_STAGE_TOKENS, dims)), dims[-1])
        self.head = nn.Sequential(nn.Linear(dims[-1], dims[-1], bias=False), nn.GELU(),
                                  nn.Linear(dims[-1], proj_dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for stage in self.stages:
            x, cls_out = stage(x)
            outs.append(cls_out)
        return self.head(self.to_embedding(torch.cat(outs, dim=-1)))

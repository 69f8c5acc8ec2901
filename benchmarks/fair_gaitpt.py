"""A faithful original GaitPT for speed comparisons: built the way the released GaitPT code builds its model.

What decides speed matches the authors' released model (AndyCatruna/GaitPT, ``gaitpt.py`` with
``configs/gaitpt_config.yaml``), read and rewritten here (no code copied):

- every spatial and temporal module is torch's ``nn.TransformerEncoder`` over ``nn.TransformerEncoderLayer``
  (8 heads, feed-forward 4 x width, GELU, pre-norm, batch-first, dropout 0.05 by default, nested tensors left at
  torch's default), followed by its own LayerNorm and a residual around the whole module;
- einops rearranges between the per-frame (spatial) and per-token (temporal) layouts, with the same axis orders:
  a patch merge concatenates channels as ``(c patch)``, positions are added in place;
- the temporal module prepends a learned CLS token and adds learned positions for T + 1 tokens;
- stage 4 (one body token) has no spatial module (the released model replaces it with an identity);
- the CLS outputs of all four stages (576 + 384 + 384 + 256 = 1,600 values) go through one Linear to the
  256-d projection, L2-normalised; fp32 throughout.

``bench_models.py`` times it next to gaitforecast's v2 and checks it against the released code's speed
(README, Performance).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, repeat

from gaitforecast.skeleton import GAITPT_MERGE, GAITPT_STAGE_TOKENS

WIDTHS = (32, 64, 128, 256)  # the released config's dim_size
HEADS, MLP_MULT, DEPTH, PROJECTION = 8, 4, 3, 256


def _transformer(dim: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d_model=dim, nhead=HEADS, dim_feedforward=dim * MLP_MULT, dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, num_layers=DEPTH)


class _Spatial(nn.Module):
    """Attention across a frame's tokens: x + LN(transformer(x + pos)), over (batch x frames) sequences."""

    def __init__(self, dim: int, tokens: int, dropout: float):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        self.transformer = _transformer(dim, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        h = rearrange(x, "b t n c -> (b t) n c")
        skip = h
        h += self.pos  # in place, on the rearranged input (the residual sees the shifted values too)
        h = self.norm(self.transformer(h))
        h += skip
        return rearrange(h, "(b t) n c -> b t n c", t=frames)


class _Temporal(nn.Module):
    """Attention along frames per token with a CLS token; returns (tokens, CLS outputs [B, n * c])."""

    def __init__(self, dim: int, tokens: int, frames: int, dropout: float):
        super().__init__()
        self.tokens = tokens
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, frames + 1, dim))
        self.transformer = _transformer(dim, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = x.shape[1]
        h = rearrange(x, "b t n c -> (b n) t c")
        skip = h
        seq = torch.cat([repeat(self.cls, "1 1 c -> s 1 c", s=h.shape[0]), h], dim=1)
        seq += self.pos
        seq = self.norm(self.transformer(seq))
        cls_out = rearrange(seq, "(b n) t c -> b t (n c)", n=self.tokens)[:, 0]
        out = seq[:, 1:]
        out += skip
        return rearrange(out, "(b n) t c -> b t n c", n=self.tokens, t=frames), cls_out


class _Stage(nn.Module):
    def __init__(self, index: int, frames: int, dropout: float):
        super().__init__()
        in_dim = 2 if index == 0 else WIDTHS[index - 1]
        self.merge_size, tokens, dim = GAITPT_MERGE[index], GAITPT_STAGE_TOKENS[index], WIDTHS[index]
        self.merge = nn.Linear(self.merge_size * in_dim, dim)
        self.spatial = _Spatial(dim, tokens, dropout) if index < len(WIDTHS) - 1 else None
        self.temporal = _Temporal(dim, tokens, frames, dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.merge(rearrange(x, "b t (n p) c -> b t n (c p)", p=self.merge_size))
        if self.spatial is not None:
            x = self.spatial(x)
        return self.temporal(x)


class FairGaitPT(nn.Module):
    """Input [B, T, 18, 2] in GaitPT joint order -> L2-normalised projection [B, 256] (4,498,784 parameters at
    T = 60, as the released model)."""

    def __init__(self, frames: int = 60, dropout: float = 0.05):
        super().__init__()
        self.stages = nn.ModuleList(_Stage(i, frames, dropout) for i in range(len(WIDTHS)))
        cls_width = sum(n * d for n, d in zip(GAITPT_STAGE_TOKENS, WIDTHS))
        self.projection = nn.Linear(cls_width, PROJECTION)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for stage in self.stages:
            x, cls_out = stage(x)
            outs.append(cls_out)
        return F.normalize(self.projection(torch.cat(outs, dim=1)))

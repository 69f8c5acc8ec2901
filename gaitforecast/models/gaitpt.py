"""GaitPT: a hierarchical skeleton transformer (Catruna, Cosma, Radoi 2024), original and v2 styles.

Input [B, T, 18, 2] in GaitPT joint order (skeleton.GAITPT18_FROM_COCO). Four stages, each a
patch merge (concatenate consecutive tokens of the previous stage, project to the stage width), then
spatial attention across the stage's tokens within each frame, then temporal attention along frames per
token with a prepended CLS token:

    stage 1: 18 joint tokens   (merge 1 joint,  width w)
    stage 2:  6 limb tokens    (merge 3 joints, width 2w)
    stage 3:  3 group tokens   (merge 2 limbs,  width 4w)  head / upper body / lower body
    stage 4:  1 body token     (merge 3 groups, width 8w)  temporal attention only

The CLS outputs of every token of every stage are concatenated (18w + 12w + 12w + 8w = 50w values) and
projected to the embedding. config_for("gaitpt-v1", 32) reproduces the authors' released model
(4,498,784 parameters at T = 60); config_for("gaitpt", w) is the v2 family used for scaling.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gaitforecast.models.blocks import Encoder, ProjectionHead, Stack, check_input
from gaitforecast.models.config import ModelConfig
from gaitforecast.models.mup import attention_scale, readout_mult
from gaitforecast.skeleton import GAITPT_MERGE, GAITPT_STAGE_TOKENS


class Stage(nn.Module):
    """Patch merge -> spatial transformer (not in the last stage) -> temporal transformer with CLS."""

    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        dim, heads = cfg.stage_dims[index], cfg.heads[index]
        in_dim = cfg.channels if index == 0 else cfg.stage_dims[index - 1]
        self.n_tokens, self.merge_size = GAITPT_STAGE_TOKENS[index], GAITPT_MERGE[index]
        v1 = cfg.style == "v1"
        scale = attention_scale(cfg, dim // heads)
        stack = dict(style=cfg.style, dim=dim, n_heads=heads, depth=cfg.depth, hidden=cfg.mlp_hidden(dim),
                     scale=scale, dropout=cfg.dropout)
        self.merge = nn.Linear(self.merge_size * in_dim, dim, bias=v1)
        self.spatial = None
        if index < len(GAITPT_STAGE_TOKENS) - 1:
            self.spatial_pos = nn.Parameter(torch.zeros(self.n_tokens, dim))
            self.spatial = Stack(**stack)
        self.cls = nn.Parameter(torch.zeros(dim))
        # v1 learns a position per frame (+ CLS); v2 rotates queries and keys by frame index instead.
        self.temporal_pos = nn.Parameter(torch.zeros(cfg.frames + 1, dim)) if v1 else None
        self.temporal = Stack(**stack, rotary=not v1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T = x.shape[:2]
        n = self.n_tokens
        x = self.merge(x.reshape(B, T, n, -1))  # consecutive tokens concatenated: [B, T, n, d]
        d = x.shape[-1]
        if self.spatial is not None:
            h = (x + self.spatial_pos).reshape(B * T, n, d)
            x = (h + self.spatial(h)).view(B, T, n, d)  # residual around the whole spatial module
        h = x.transpose(1, 2).reshape(B * n, T, d)  # one sequence of frames per token
        seq = torch.cat((self.cls.expand(B * n, 1, d).to(h.dtype), h), dim=1)  # [B*n, 1+T, d]
        if self.temporal_pos is not None:
            seq = seq + self.temporal_pos
        out = self.temporal(seq)
        cls_out = out[:, 0].reshape(B, n * d)
        x = (h + out[:, 1:]).view(B, n, T, d).transpose(1, 2)  # residual (CLS excluded): [B, T, n, d]
        return x, cls_out


class GaitPT(Encoder):
    """model(x) -> SSL projection z [B, P]; model.embed(x) -> L2-normalised embedding [B, E]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.stages = nn.ModuleList(Stage(cfg, i) for i in range(len(GAITPT_STAGE_TOKENS)))
        cls_width = sum(n * d for n, d in zip(GAITPT_STAGE_TOKENS, cfg.stage_dims))
        self.to_embedding = nn.Linear(cls_width, cfg.embedding_dim, bias=cfg.style == "v1")
        self.head = ProjectionHead(cfg.embedding_dim, cfg.proj_dim, readout_mult(cfg))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised embedding [B, E] (input checked)."""
        check_input(x, self.cfg.joints, self.cfg.channels, self.cfg.frames if self.cfg.style == "v1" else None)
        cls_outputs = []
        for stage in self.stages:
            x, cls_out = stage(x)
            cls_outputs.append(cls_out)
        return self.to_embedding(torch.cat(cls_outputs, dim=-1))

    @staticmethod
    def is_embedding_param(name: str) -> bool:
        """Input/positional parameters, excluded from the non-embedding count (Kaplan convention)."""
        return name.startswith("stages.0.merge.") or name.endswith(("_pos", ".cls"))

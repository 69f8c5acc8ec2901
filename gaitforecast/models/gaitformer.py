"""GaitFormer (Cosma & Radoi 2022) with v2 blocks: one token per frame, temporal attention only.

Each frame's 18 x 2 coordinates are flattened and projected to d_model; a CLS token is prepended;
v2 blocks (parallel, RMSNorm, SwiGLU, RoPE over frames) run over the 1 + T tokens; the CLS output is
projected to the embedding. The width knob is d_model; depth is fixed per family.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from gaitforecast.models.blocks import Encoder, ProjectionHead, Stack, check_input
from gaitforecast.models.config import ModelConfig
from gaitforecast.models.mup import attention_scale, readout_mult


class GaitFormer(Encoder):
    """model(x) -> SSL projection z [B, P]; model.embed(x) -> L2-normalised embedding [B, E]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d, heads = cfg.width, cfg.heads[0]
        self.frame_in = nn.Linear(cfg.joints * cfg.channels, d, bias=cfg.style == "v1")
        self.cls = nn.Parameter(torch.zeros(d))
        v1 = cfg.style == "v1"
        self.temporal_pos = nn.Parameter(torch.zeros(cfg.frames + 1, d)) if v1 else None
        self.body = Stack(cfg.style, d, heads, cfg.depth, cfg.mlp_hidden(d), attention_scale(cfg, d // heads),
                          cfg.dropout, rotary=not v1)
        self.to_embedding = nn.Linear(d, cfg.embedding_dim, bias=v1)
        self.head = ProjectionHead(cfg.embedding_dim, cfg.proj_dim, readout_mult(cfg))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised embedding [B, E] (input checked)."""
        check_input(x, self.cfg.joints, self.cfg.channels, self.cfg.frames if self.cfg.style == "v1" else None)
        B, T = x.shape[:2]
        h = self.frame_in(x.reshape(B, T, -1))  # [B, T, d]
        seq = torch.cat((self.cls.expand(B, 1, -1).to(h.dtype), h), dim=1)  # [B, 1+T, d]
        if self.temporal_pos is not None:
            seq = seq + self.temporal_pos
        return self.to_embedding(self.body(seq)[:, 0])

    @staticmethod
    def is_embedding_param(name: str) -> bool:
        """Input/positional parameters, excluded from the non-embedding count (Kaplan convention)."""
        return name.startswith("frame_in.") or name.endswith(("_pos", "cls"))

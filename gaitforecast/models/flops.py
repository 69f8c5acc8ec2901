"""Analytic FLOPs per sequence for every architecture, and the family table the planner and laws use.

Convention: a multiply-add is 2 FLOPs; only matrix products are counted (linear layers, attention
scores q.k and the weighted sum of values, patch merges, the embedding projection and the SSL head),
which is exactly what torch.utils.flop_counter.FlopCounterMode counts with the math SDPA backend
(the test checks this). Norms, softmax, RoPE and activations are left out (< 2 % here).
Training FLOPs = 3 x forward (backward is twice the forward) x views x sequences.
"""

from __future__ import annotations

import pandas as pd

from gaitforecast.models.config import FAMILY_WIDTHS, ModelConfig, config_for
from gaitforecast.models.families import family
from gaitforecast.skeleton import GAITPT_MERGE, GAITPT_STAGE_TOKENS


def stack_flops(cfg: ModelConfig, dim: int, sequences: int, tokens: int) -> int:
    """Forward FLOPs of cfg.depth blocks over ``sequences`` independent sequences of ``tokens`` tokens."""
    hidden = cfg.mlp_hidden(dim)
    if cfg.style == "v1":  # qkv, out, fc, proj
        dense = 2 * dim * 3 * dim + 2 * dim * dim + 2 * 2 * dim * hidden
    else:  # w_in = q|k|v|gate|up, attn_out, mlp_out
        dense = 2 * dim * (3 * dim + 2 * hidden) + 2 * (dim + hidden) * dim
    attention = 2 * 2 * tokens * tokens * dim  # q.k scores and weights.v, summed over heads
    return cfg.depth * sequences * (tokens * dense + attention)


def head_flops(cfg: ModelConfig) -> int:
    """SSL projection head E -> E -> P."""
    e = cfg.embedding_dim
    return 2 * e * e + 2 * e * cfg.proj_dim


def gaitformer_flops(cfg: ModelConfig) -> int:
    """GaitFormer encoder: per-frame embedding, one stack over CLS + T frames, the embedding projection."""
    T, d = cfg.frames, cfg.width
    flops = 2 * T * cfg.joints * cfg.channels * d  # per-frame embedding
    flops += stack_flops(cfg, d, 1, T + 1)
    return flops + 2 * d * cfg.embedding_dim


def gaitpt_flops(cfg: ModelConfig) -> int:
    """GaitPT encoder: per stage a patch merge, a spatial stack (not the last stage) and a temporal stack over
    CLS + T frames per token, then the projection of every stage's CLS outputs to the embedding."""
    T = cfg.frames
    flops, in_dim = 0, cfg.channels
    last = len(GAITPT_STAGE_TOKENS) - 1
    for i, (n, merge, d) in enumerate(zip(GAITPT_STAGE_TOKENS, GAITPT_MERGE, cfg.stage_dims)):
        flops += 2 * T * n * merge * in_dim * d  # patch merge
        if i < last:
            flops += stack_flops(cfg, d, T, n)  # spatial: T frames of n tokens
        flops += stack_flops(cfg, d, n, T + 1)  # temporal: n tokens of CLS + T frames
        in_dim = d
    cls_width = sum(n * d for n, d in zip(GAITPT_STAGE_TOKENS, cfg.stage_dims))
    return flops + 2 * cls_width * cfg.embedding_dim


def forward_flops(cfg: ModelConfig, include_head: bool = True) -> int:
    """Forward FLOPs for one sequence of cfg.frames frames (encoder, by its family's formula, + SSL head)."""
    return family(cfg.arch).flops(cfg) + (head_flops(cfg) if include_head else 0)


def train_flops(cfg: ModelConfig, sequences_seen: int, views: int = 2) -> int:
    """Training FLOPs: 3 x forward x views x sequences (each sequence is seen as ``views`` augmented views)."""
    return 3 * forward_flops(cfg) * views * int(sequences_seen)


def family_table(arch: str, frames: int = 60, widths: list[int] | tuple[int, ...] | None = None) -> pd.DataFrame:
    """One row per family member: arch, width, params, params_nonembed, forward_flops,
    train_flops_per_sample (= 3 x forward x 2 views). Default widths = FAMILY_WIDTHS[arch]."""
    from gaitforecast.models.build import count_params  # late import: it needs torch, this module does not

    rows = []
    for width in widths if widths is not None else FAMILY_WIDTHS[arch]:
        cfg = config_for(arch, width, frames=frames)
        params, params_nonembed = count_params(cfg)
        fwd = forward_flops(cfg)
        rows.append(dict(arch=arch, width=int(width), params=params, params_nonembed=params_nonembed,
                         forward_flops=fwd, train_flops_per_sample=3 * fwd * 2))
    return pd.DataFrame(rows)

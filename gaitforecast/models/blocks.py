"""Transformer pieces shared by GaitPT and GaitFormer: norms, rotary embeddings, attention, MLPs, blocks.

Two block styles live side by side so the original GaitPT and the modernised v2 are the same code:

- v1 (original GaitPT / nn.TransformerEncoderLayer with norm_first): x += Attn(LN(x)); x += MLP(LN(x)),
  LayerNorm, GELU MLP, biases everywhere, dropout.
- v2: x + Attn(N(x)) + MLP(N(x)) from one RMSNorm, SwiGLU, no biases, optional RoPE. The attention
  in-projection and the SwiGLU in-projection are one matmul, so a block costs two matmuls.

Every module works on [S, n, d]: S independent sequences (frames for spatial attention, joints for
temporal attention) of n tokens.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gaitforecast.errors import GaitforecastError


def check_input(x: torch.Tensor, joints: int, channels: int, frames: int | None) -> None:
    """Raise GaitforecastError unless x is a finite float tensor [B, T, joints, channels]."""
    want = f"[B, T{'=' + str(frames) if frames else ''}, {joints}, {channels}]"
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise GaitforecastError(f"model input must be a tensor {want} (GaitPT joint order, x/y), got {shape}")
    if x.shape[2] != joints or x.shape[3] != channels:
        raise GaitforecastError(
            f"model input must be {want}, got {tuple(x.shape)}; convert COCO-17 poses with skeleton.to_gaitpt"
        )
    if frames is not None and x.shape[1] != frames:
        raise GaitforecastError(f"model input must be {want} (this config has learned positions for T={frames}), "
                                f"got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise GaitforecastError(f"model input must be a float tensor {want}, got dtype {x.dtype}")


def check_finite(x: torch.Tensor) -> None:
    """Raise GaitforecastError if x holds NaN or inf. A host sync: call it on evaluation inputs, not per
    training step (the training loop checks its loss instead)."""
    if not bool(torch.isfinite(x).all()):
        raise GaitforecastError("model input contains NaN or inf; normalise and fill missing joints first")


class RMSNorm(nn.Module):
    """y = g * x / sqrt(mean(x^2) + eps)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a gain in the input's dtype keeps the fused kernel under bf16 autocast
        return F.rms_norm(x, (x.shape[-1],), self.weight.to(x.dtype), self.eps)


def make_norm(style: str, dim: int) -> nn.Module:
    return nn.LayerNorm(dim) if style == "v1" else RMSNorm(dim)


class Rotary(nn.Module):
    """Rotary position tables for token positions 0..n-1 (half-split convention).

    The tables are non-persistent buffers grown to the longest sequence seen and sliced per call: they move
    with the model, stay out of checkpoints, and torch.compile treats them as inputs (a dict cache would be
    guarded on, and computing them inside the graph made a compiled GaitPT w4 step 25 % slower).
    """

    def __init__(self, head_dim: int, base: float = 10000.0, length: int = 64):
        super().__init__()
        self.head_dim, self.base = head_dim, base
        cos, sin = self.tables(length)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def reset_buffers(self, length: int | None = None) -> None:
        """Fill the tables for ``length`` positions (default: as many as now; a model built on the meta device and
        moved with ``to_empty`` has them empty), on the device they are on."""
        self.cos, self.sin = (t.to(self.cos.device) for t in self.tables(length or self.cos.shape[0]))

    def forward(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if n > self.cos.shape[0]:
            self.reset_buffers(2 * n)
        return self.cos[:n], self.sin[:n]

    def tables(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = self.base ** (-torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim)
        angles = torch.outer(torch.arange(n, dtype=torch.float32), inv_freq)  # [n, hd/2]
        cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)  # [n, hd]
        sin[:, : self.head_dim // 2] *= -1  # rotate_half folded into the sign of sin
        return cos, sin


class _ShortSoftmax(torch.autograd.Function):
    """Softmax over a short last axis (a few tokens). torch's kernel spends ~4x longer per row there than
    max / exp / sum passes over the whole tensor (measured, [1536, 2, 7, 7] fwd+bwd 4.0 ms vs 0.9 ms)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = (x - x.amax(-1, keepdim=True)).exp_()
        y = y.div_(y.sum(-1, keepdim=True))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        gy = grad * y
        return gy.sub_(y * gy.sum(-1, keepdim=True))


def softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, with the short-axis kernel below 16 tokens (torch's is faster above)."""
    return _ShortSoftmax.apply(x) if x.shape[-1] < 16 else x.softmax(dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate [..., n, hd] by position: x*cos + swap_halves(x)*sin (sin's first half is negated)."""
    half = x.shape[-1] // 2
    swapped = torch.cat((x[..., half:], x[..., :half]), dim=-1)
    return x * cos + swapped * sin


class Attention(nn.Module):
    """v1 multi-head self-attention (own qkv/out linears, default SDPA dispatch like nn.MultiheadAttention)."""

    def __init__(self, dim: int, n_heads: int, scale: float, bias: bool, dropout: float = 0.0):
        super().__init__()
        self.n_heads, self.scale, self.dropout = n_heads, scale, dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(attend(self.qkv(x), self.n_heads, self.scale, self.dropout if self.training else 0.0))

    def mup_query_weight(self) -> torch.Tensor:
        """The rows of ``qkv`` that produce queries (muP starts them at zero)."""
        return self.qkv.weight[: self.qkv.in_features]


def attend(qkv: torch.Tensor, n_heads: int, scale: float, dropout: float = 0.0) -> torch.Tensor:
    """[S, n, 3d] packed q|k|v -> [S, n, d] attention output (heads merged), torch's default SDPA dispatch
    (what nn.MultiheadAttention does; the v1 block)."""
    S, n, three_d = qkv.shape
    d = three_d // 3
    q, k, v = qkv.view(S, n, 3, n_heads, d // n_heads).permute(2, 0, 3, 1, 4).unbind(0)  # [S, H, n, hd] each
    y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scale)
    return y.transpose(1, 2).reshape(S, n, d)


SHORT_TOKENS = 20  # attention over at most this many tokens runs in fp32 on CPU (see attend_heads)


def attend_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_heads: int, scale: float,
                 rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Multi-head attention of contiguous q, k, v [S, n, d] -> [S, n, d] (heads merged), optional RoPE.

    On CPU the attention is written out (scaled q @ k^T, softmax, @ v): for these short sequences
    (n <= 61) that trains faster than both SDPA kernels. The flash kernel's backward dominates under bf16,
    and SDPA's math backend adds a "safe softmax" (isneginf / all / where passes, ~9 % of a GaitPT step)
    that unmasked attention does not need (measured, torch 2.13). With one head (GaitPT's first stage)
    every view below is free: no copies between the projections and the matmuls. Short sequences (GaitPT's
    spatial attention over 18, 6 and 3 tokens) run in fp32 under bf16 autocast: this CPU's bf16 kernels are
    slow on tiny rows (softmax over 18 tokens 3.3x, a 3x4 @ 4x3 batched matmul 5x slower than fp32; a GaitPT
    w4 step 8-10 % faster, w6 2-4 %, measured side by side, 1 thread).
    """
    S, n, d = q.shape
    if n <= SHORT_TOKENS and q.dtype == torch.bfloat16 and q.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):
            return attend_heads(q.float(), k.float(), v.float(), n_heads, scale, rope).to(q.dtype)
    q, k, v = (t.view(S, n, n_heads, d // n_heads).transpose(1, 2) for t in (q, k, v))  # [S, H, n, hd]
    if rope is not None:
        cos, sin = (t.to(q.dtype) for t in rope)
        q, k = apply_rope(q, cos * scale, sin * scale), apply_rope(k, cos, sin)  # the scale rides on q's rope
    else:
        q = q * scale
    if q.device.type == "cpu":
        y = torch.matmul(softmax_last(torch.matmul(q, k.transpose(-1, -2))), v)  # [S, H, n, hd]
    else:
        y = F.scaled_dot_product_attention(q, k, v, scale=1.0)
    return y.transpose(1, 2).reshape(S, n, d)


class GeluMLP(nn.Module):
    def __init__(self, dim: int, hidden: int, bias: bool, dropout: float):
        super().__init__()
        self.fc = nn.Linear(dim, hidden, bias=bias)
        self.proj = nn.Linear(hidden, dim, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.drop(F.gelu(self.fc(x))))


class SequentialBlock(nn.Module):
    """Original GaitPT layer (= nn.TransformerEncoderLayer(norm_first=True, activation='gelu'))."""

    def __init__(self, dim: int, n_heads: int, hidden: int, scale: float, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, n_heads, scale, bias=True, dropout=dropout)
        self.mlp = GeluMLP(dim, hidden, bias=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class ParallelBlock(nn.Module):
    """v2 layer: x + Attn(N(x)) + SwiGLU(N(x)); q|k|v|gate|up are rows of one weight ``w_in``.

    The weight is one parameter (one muP group, one FLOP formula) but is applied as five matmuls on its
    row blocks, so q, k, v, gate and up come out contiguous: SiLU and its backward on strided slices of
    one packed output cost ~3x more at small widths, and strided q/k/v force copies before the attention
    matmuls (measured on GaitPT w4-w8, CPU).
    """

    def __init__(self, dim: int, n_heads: int, hidden: int, scale: float, rotary: bool):
        super().__init__()
        self.dim, self.hidden, self.n_heads, self.scale = dim, hidden, n_heads, scale
        self.norm = RMSNorm(dim)
        self.w_in = nn.Linear(dim, 3 * dim + 2 * hidden, bias=False)  # rows: q, k, v, gate, up
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.mlp_out = nn.Linear(hidden, dim, bias=False)
        self.rotary = Rotary(dim // n_heads) if rotary else None

    def mup_query_weight(self) -> torch.Tensor:
        """The rows of ``w_in`` that produce queries (muP starts them at zero)."""
        return self.w_in.weight[: self.dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, n, d = x.shape
        xn, w, h = self.norm(x), self.w_in.weight, self.hidden
        q, k, v, gate, up = (F.linear(xn, w[a:b]) for a, b in
                             ((0, d), (d, 2 * d), (2 * d, 3 * d), (3 * d, 3 * d + h), (3 * d + h, 3 * d + 2 * h)))
        rope = self.rotary(n) if self.rotary is not None else None
        y = attend_heads(q, k, v, self.n_heads, self.scale, rope)  # [S, n, d]
        return x + self.attn_out(y) + self.mlp_out(F.silu(gate) * up)


class Stack(nn.Module):
    """depth blocks then a final norm: the spatial or temporal transformer of a stage, or GaitFormer's body."""

    def __init__(self, style: str, dim: int, n_heads: int, depth: int, hidden: int, scale: float,
                 dropout: float = 0.0, rotary: bool = False):
        super().__init__()
        if style == "v1":
            blocks = [SequentialBlock(dim, n_heads, hidden, scale, dropout) for _ in range(depth)]
        else:
            blocks = [ParallelBlock(dim, n_heads, hidden, scale, rotary) for _ in range(depth)]
        self.blocks = nn.ModuleList(blocks)
        self.norm = make_norm(style, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class ProjectionHead(nn.Module):
    """SimCLR head E -> E -> P. The last layer is the muP readout: its input is scaled by readout_mult."""

    def __init__(self, dim: int, out_dim: int, readout_mult: float = 1.0):
        super().__init__()
        self.hidden = nn.Linear(dim, dim, bias=False)
        self.readout = nn.Linear(dim, out_dim, bias=False)
        self.readout_mult = readout_mult

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.readout(F.gelu(self.hidden(h)) * self.readout_mult)

    def mup_readout(self) -> nn.Linear:
        """The muP readout layer (its input is scaled by 1/m, its init variance by m)."""
        return self.readout


class Encoder(nn.Module):
    """The face every family shares: ``features`` (defined by the family) -> ``forward`` for the SSL loss and
    ``embed`` for frozen-encoder evaluation."""

    head: ProjectionHead

    def features(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, 18, 2] -> [B, E]
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # [B, P], not normalised

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        check_finite(x)
        return F.normalize(self.features(x).float(), dim=-1)  # [B, E], unit length

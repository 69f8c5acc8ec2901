"""The self-supervised objective: SimCLR NT-Xent over two views plus a small KoLeo spreading term.

Use :func:`ssl_loss` in training and for the held-out loss. Conventions (paper notes 1.4, 4, 5):

- ``nt_xent(z1, z2, t)``: the 2B projections are L2-normalised; each view's positive is the other view of the
  same sequence, its negatives are the other 2B - 2 views; cross-entropy over cosine similarity / t, averaged
  over all 2B anchors (both orderings of every positive pair).
- ``koleo(z)``: Kozachenko-Leonenko entropy estimate on L2-normalised vectors,
  ``-mean_i log(min_{j != i} ||z_i - z_j|| + eps)``; pushes each point away from its nearest neighbour.
  Here it is applied to each view's normalised projections separately and averaged over the two views.
- ``ssl_loss = nt_xent + koleo_weight * koleo`` (koleo_weight 0.01 as in the paper).

Both terms are computed in float32 even under bf16 autocast (logsumexp and log of small distances need it).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from gaitforecast.errors import GaitforecastError

KOLEO_EPS = 1e-8


class LossParts(NamedTuple):
    """The total loss and its two terms (all 0-d tensors; ``total`` carries the gradient)."""

    total: torch.Tensor
    nt_xent: torch.Tensor
    koleo: torch.Tensor


def _check_pair(z1: torch.Tensor, z2: torch.Tensor) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise GaitforecastError(
            f"the two views must be [B, P] tensors of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 2:
        raise GaitforecastError(f"the contrastive loss needs a batch of at least 2 sequences, got {z1.shape[0]}")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR NT-Xent loss for projections of two views, ``z1[i]`` and ``z2[i]`` being the same sequence."""
    _check_pair(z1, z2)
    if not temperature > 0:
        raise GaitforecastError(f"temperature must be > 0, got {temperature}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # [2B, P]
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, target)


def koleo(z: torch.Tensor, eps: float = KOLEO_EPS) -> torch.Tensor:
    """KoLeo regulariser on the L2-normalised rows of ``z`` [n, P] (n >= 2)."""
    if z.ndim != 2 or z.shape[0] < 2:
        raise GaitforecastError(f"KoLeo needs a [n >= 2, P] tensor, got shape {tuple(z.shape)}")
    zn = F.normalize(z.float(), dim=1)
    dots = zn @ zn.T
    dots.fill_diagonal_(-2.0)  # never pick yourself as nearest neighbour
    nearest = dots.argmax(dim=1)
    dist = (zn - zn[nearest]).norm(dim=1)
    return -torch.log(dist + eps).mean()


def ssl_loss(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, koleo_weight: float = 0.01
) -> LossParts:
    """NT-Xent(z1, z2) + koleo_weight x mean(KoLeo(z1), KoLeo(z2)); returns the total and both terms."""
    contrastive = nt_xent(z1, z2, temperature)
    spread = 0.5 * (koleo(z1) + koleo(z2))
    return LossParts(contrastive + koleo_weight * spread, contrastive, spread)

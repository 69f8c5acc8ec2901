"""Batched, seeded skeleton augmentations that make the two SimCLR views of a walking sequence.

Use :func:`two_views` in the training loop: it takes a batch of *normalised* COCO-17 sequences
(``skeleton.normalize`` output, [B, T_src, 17, 3] torch float32) and returns two independently augmented views
in GaitPT order ([B, frames, 18, 2]), ready for the model. Everything runs on whole batches in torch (no Python
loop over sequences) and every random draw comes from the ``torch.Generator`` you pass, so a seed fixes the views.

Augmentations, applied in this order (parameters in :class:`AugmentConfig`):

1. random pace + temporal crop: a per-sequence playback speed ``p`` (log-uniform in [pace_min, pace_max],
   capped so the window fits) and a random start; output frame ``i`` reads source time ``start + i * p`` with
   linear interpolation (p < 1 slows the walk down, p > 1 speeds it up);
2. temporal flip (play backwards) with probability ``p_time_flip``;
3. mirror (x -> -x about the pelvis and left/right joints swapped, ``skeleton.COCO17_SWAP``), ``p_mirror``,
   and a horizontal squeeze (x scaled by a factor uniform in [squeeze_min, 1]; 1 = off) that mimics the
   foreshortening of a turned camera, so the views cannot be told apart by stride width alone;
4. joint noise: one Gaussian offset per joint held for the whole sequence (``joint_noise``, in body heights);
5. point noise: independent Gaussian jitter per joint and frame (``point_noise``);
6. temporal smoothing with probability ``p_smooth``: a Gaussian filter over time of random width.

Joints with confidence 0 stay at 0 (the pelvis) so the models see missing joints the same way as in evaluation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import COCO17_SWAP, GAITPT18_FROM_COCO

_SWAP = torch.tensor(COCO17_SWAP, dtype=torch.long)
_TO_GAITPT = torch.tensor(GAITPT18_FROM_COCO, dtype=torch.long)
_SMOOTH_RADIUS = 4


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the view augmentations; ``AugmentConfig()`` is the training default.

    Noise is in body heights. Keep the per-joint offset small: it perturbs bone lengths, and with 0.02 (about
    the spread of people's proportions) the encoder learned to ignore body shape and zero-shot rank-1 fell
    below the random-init baseline; 0.002 with a 0.5 squeeze made rank-1 rise with training (measured).
    """

    pace_min: float = 0.5
    pace_max: float = 2.0
    p_time_flip: float = 0.5
    p_mirror: float = 0.5
    joint_noise: float = 0.002
    point_noise: float = 0.005
    p_smooth: float = 0.5
    smooth_sigma_max: float = 2.0
    squeeze_min: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.pace_min <= self.pace_max):
            raise GaitforecastError(
                f"augment: need 0 < pace_min <= pace_max, got pace_min={self.pace_min}, pace_max={self.pace_max}"
            )
        for name in ("p_time_flip", "p_mirror", "p_smooth"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise GaitforecastError(f"augment.{name} must be a probability in [0, 1], got {value}")
        if not 0.0 < self.squeeze_min <= 1.0:
            raise GaitforecastError(f"augment.squeeze_min must be in (0, 1], got {self.squeeze_min}")
        for name in ("joint_noise", "point_noise", "smooth_sigma_max"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise GaitforecastError(f"augment.{name} must be a finite number >= 0, got {value}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _uniform(shape: tuple[int, ...], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device="cpu").to(device)


def _normal(shape: tuple[int, ...], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device="cpu").to(device)


def pace_crop(seq: torch.Tensor, frames: int, pace_min: float, pace_max: float, gen: torch.Generator) -> torch.Tensor:
    """Resample each sequence at a random pace and cut a random window of ``frames`` frames.

    ``seq`` [B, T, J, 3] -> [B, frames, J, 3]. The pace is capped per sequence so the window fits inside ``T``;
    with ``pace_min == pace_max == 1`` this is a plain random crop.
    """
    b, t_src = seq.shape[0], seq.shape[1]
    if frames < 2 or t_src < 2:
        raise GaitforecastError(f"pace_crop needs at least 2 frames in and out, got T={t_src}, frames={frames}")
    device = seq.device
    u = _uniform((b,), gen, device)
    pace = torch.exp(math.log(pace_min) + u * (math.log(pace_max) - math.log(pace_min)))
    pace = torch.minimum(pace, torch.full_like(pace, (t_src - 1) / (frames - 1)))
    span = pace * (frames - 1)  # source time covered by the window
    start = _uniform((b,), gen, device) * (t_src - 1 - span).clamp(min=0.0)
    pos = start[:, None] + pace[:, None] * torch.arange(frames, device=device, dtype=seq.dtype)[None, :]
    pos = pos.clamp(0, t_src - 1)
    lo = pos.floor().long().clamp(max=t_src - 2)
    w = (pos - lo.to(seq.dtype))[:, :, None, None]  # [B, frames, 1, 1]
    idx = lo[:, :, None, None].expand(-1, -1, seq.shape[2], seq.shape[3])
    a = torch.gather(seq, 1, idx)
    c = torch.gather(seq, 1, idx + 1)
    out = a + (c - a) * w
    # A joint is confident only where both neighbouring frames are; missing joints stay at the pelvis (0).
    conf = torch.minimum(a[..., 2], c[..., 2])
    xy = out[..., :2] * (conf > 0).unsqueeze(-1)
    return torch.cat([xy, conf.unsqueeze(-1)], dim=-1)


def time_flip(seq: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Play a random subset of sequences (each with probability ``p``) backwards in time."""
    pick = _uniform((seq.shape[0],), gen, seq.device) < p
    return torch.where(pick[:, None, None, None], seq.flip(1), seq)


def mirror(seq: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Mirror a random subset of pelvis-centred COCO-17 sequences: negate x and swap left/right joints."""
    pick = _uniform((seq.shape[0],), gen, seq.device) < p
    flipped = seq[:, :, _SWAP.to(seq.device), :].clone()
    flipped[..., 0] = -flipped[..., 0]
    return torch.where(pick[:, None, None, None], flipped, seq)


def squeeze(seq: torch.Tensor, squeeze_min: float, gen: torch.Generator) -> torch.Tensor:
    """Scale x of each sequence by a factor uniform in [squeeze_min, 1] (pelvis-centred data)."""
    factor = squeeze_min + _uniform((seq.shape[0],), gen, seq.device) * (1.0 - squeeze_min)
    scale = torch.stack([factor, torch.ones_like(factor), torch.ones_like(factor)], dim=-1)  # x, y, conf
    return seq * scale[:, None, None, :]


def add_noise(seq: torch.Tensor, joint_noise: float, point_noise: float, gen: torch.Generator) -> torch.Tensor:
    """Per-joint constant offsets (whole sequence) plus per-frame jitter, on confident joints only."""
    b, t, j, _ = seq.shape
    offset = _normal((b, 1, j, 2), gen, seq.device) * joint_noise
    jitter = _normal((b, t, j, 2), gen, seq.device) * point_noise
    mask = (seq[..., 2:3] > 0).to(seq.dtype)
    xy = seq[..., :2] + (offset + jitter) * mask
    return torch.cat([xy, seq[..., 2:3]], dim=-1)


def smooth(seq: torch.Tensor, p: float, sigma_max: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian-filter the joint trajectories over time for a random subset (width uniform in [0.5, sigma_max])."""
    b = seq.shape[0]
    pick = _uniform((b,), gen, seq.device) < p
    sigma = 0.5 + _uniform((b,), gen, seq.device) * max(sigma_max - 0.5, 0.0)
    if sigma_max <= 0 or not bool(pick.any()):
        return seq
    offsets = torch.arange(-_SMOOTH_RADIUS, _SMOOTH_RADIUS + 1, device=seq.device, dtype=seq.dtype)
    kernel = torch.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [B, K]
    xy = seq[..., :2]
    padded = torch.cat(
        [xy[:, :1].expand(-1, _SMOOTH_RADIUS, -1, -1), xy, xy[:, -1:].expand(-1, _SMOOTH_RADIUS, -1, -1)], dim=1
    )
    windows = padded.unfold(1, 2 * _SMOOTH_RADIUS + 1, 1)  # [B, T, J, 2, K]
    smoothed = (windows * kernel[:, None, None, None, :]).sum(-1)
    smoothed = smoothed * (seq[..., 2:3] > 0).to(seq.dtype)
    xy = torch.where(pick[:, None, None, None], smoothed, xy)
    return torch.cat([xy, seq[..., 2:3]], dim=-1)


def augment(seq: torch.Tensor, frames: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """One augmented view: normalised COCO-17 [B, T_src, 17, 3] -> [B, frames, 17, 3] (still COCO order)."""
    if seq.ndim != 4 or seq.shape[2] != 17 or seq.shape[3] != 3:
        raise GaitforecastError(f"augment expects normalised COCO-17 [B, T, 17, 3], got shape {tuple(seq.shape)}")
    out = pace_crop(seq, frames, cfg.pace_min, cfg.pace_max, gen)
    out = time_flip(out, cfg.p_time_flip, gen)
    out = mirror(out, cfg.p_mirror, gen)
    out = squeeze(out, cfg.squeeze_min, gen)
    out = add_noise(out, cfg.joint_noise, cfg.point_noise, gen)
    return smooth(out, cfg.p_smooth, cfg.smooth_sigma_max, gen)


def coco_to_gaitpt(seq: torch.Tensor) -> torch.Tensor:
    """COCO-17 [..., T, 17, C] -> GaitPT order [..., T, 18, 2] (torch twin of ``skeleton.to_gaitpt``)."""
    return seq[..., _TO_GAITPT.to(seq.device), :2].contiguous()


def two_views(
    seq: torch.Tensor, frames: int, cfg: AugmentConfig, gen: torch.Generator, partner: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each sequence, in GaitPT order [B, frames, 18, 2] each.

    The second view is cut from ``partner`` (e.g. the same walk from another camera, [B, T_src, 17, 3]) when
    given, else from ``seq`` itself (two random windows of one track)."""
    other = seq if partner is None else partner
    return coco_to_gaitpt(augment(seq, frames, cfg, gen)), coco_to_gaitpt(augment(other, frames, cfg, gen))


def center_window(seq: torch.Tensor, frames: int) -> torch.Tensor:
    """Deterministic evaluation window: the central ``frames`` frames, or the sequence looped if it is shorter."""
    t_src = seq.shape[-3]
    if t_src >= frames:
        start = (t_src - frames) // 2
        return seq[..., start : start + frames, :, :]
    reps = -(-frames // t_src)
    return torch.cat([seq] * reps, dim=-3)[..., :frames, :, :]

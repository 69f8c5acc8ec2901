"""View augmentations: shapes, the left/right swap, determinism by seed, each step's effect."""

import numpy as np
import pytest
import torch

from gaitforecast.data import augment as aug
from gaitforecast.data.augment import AugmentConfig
from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import COCO17_NAMES, GAITPT18_FROM_COCO, to_gaitpt

NO_AUG = AugmentConfig(pace_min=1, pace_max=1, p_time_flip=0, p_mirror=0, joint_noise=0, point_noise=0, p_smooth=0,
                       squeeze_min=1)


def _batch(b=4, t=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randn(b, t, 17, 3, generator=gen)
    seq[..., 2] = 1.0
    return seq


def test_shapes_and_gaitpt_order():
    seq = _batch()
    v1, v2 = aug.two_views(seq, 24, AugmentConfig(), torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == (4, 24, 18, 2)
    assert v1.dtype == torch.float32 and torch.isfinite(v1).all()
    assert not torch.allclose(v1, v2)  # two independent views
    np.testing.assert_array_equal(aug.coco_to_gaitpt(seq).numpy(), to_gaitpt(seq.numpy()))
    assert aug.coco_to_gaitpt(seq)[0, 0, 1, 0] == seq[0, 0, GAITPT18_FROM_COCO[1], 0]


def test_mirror_swaps_left_and_right_and_negates_x():
    seq = _batch(b=2)
    out = aug.mirror(seq, 1.0, torch.Generator().manual_seed(0))
    li, ri = COCO17_NAMES.index("left_wrist"), COCO17_NAMES.index("right_wrist")
    assert torch.equal(out[:, :, li, 0], -seq[:, :, ri, 0])
    assert torch.equal(out[:, :, ri, 1], seq[:, :, li, 1])
    assert torch.equal(out[:, :, 0, 0], -seq[:, :, 0, 0])  # the nose stays the nose
    assert torch.equal(aug.mirror(out, 1.0, torch.Generator()), seq)  # mirroring twice is the identity
    assert torch.equal(aug.mirror(seq, 0.0, torch.Generator()), seq)


def test_time_flip_reverses():
    seq = _batch(b=3)
    assert torch.equal(aug.time_flip(seq, 1.0, torch.Generator()), seq.flip(1))


def test_pace_crop_reads_linear_time():
    # x of every joint = frame index, so the output's x is the source time that was read.
    t = 60
    seq = torch.zeros(8, t, 17, 3)
    seq[..., 0] = torch.arange(t, dtype=torch.float32)[None, :, None]
    seq[..., 2] = 1.0
    out = aug.pace_crop(seq, 20, 0.5, 2.0, torch.Generator().manual_seed(1))
    steps = out[:, 1:, 0, 0] - out[:, :-1, 0, 0]
    pace = steps[:, 0]
    assert torch.allclose(steps, pace[:, None].expand_as(steps), atol=1e-4)  # constant speed per sequence
    assert (pace >= 0.5 - 1e-5).all() and (pace <= 2.0 + 1e-5).all()
    assert pace.max() / pace.min() > 1.2  # paces differ between sequences
    assert (out[..., 0] >= 0).all() and (out[..., 0] <= t - 1).all()
    plain = aug.pace_crop(seq, 20, 1.0, 1.0, torch.Generator().manual_seed(1))
    assert torch.allclose(plain[:, 1:, 0, 0] - plain[:, :-1, 0, 0], torch.ones(8, 19))


def test_pace_crop_keeps_missing_joints_at_zero():
    seq = _batch(b=2)
    seq[:, 10, 5, 2] = 0.0
    seq[:, 10, 5, :2] = 0.0
    out = aug.pace_crop(seq, 40, 1.0, 1.0, torch.Generator())  # window = the whole sequence
    assert out[:, 10, 5, 2].eq(0).all() and out[:, 10, 5, :2].eq(0).all()


def test_noise_offsets_and_jitter():
    seq = torch.zeros(64, 30, 17, 3)
    seq[..., 2] = 1.0
    seq[:, :, 3, 2] = 0.0  # a missing joint gets no noise
    joint = aug.add_noise(seq, 0.1, 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(joint[:, 1:, :, :2], joint[:, :1, :, :2].expand(-1, 29, -1, -1))  # constant over time
    assert joint[..., :2].std().item() == pytest.approx(0.1 * (16 / 17) ** 0.5, rel=0.1)
    assert joint[:, :, 3, :2].eq(0).all()
    point = aug.add_noise(seq, 0.0, 0.05, torch.Generator().manual_seed(0))
    assert point[:, :, 0, :2].std().item() == pytest.approx(0.05, rel=0.1)


def test_smoothing_lowers_frame_to_frame_jitter():
    gen = torch.Generator().manual_seed(0)
    seq = torch.randn(4, 50, 17, 3, generator=gen)
    seq[..., 2] = 1.0
    out = aug.smooth(seq, 1.0, 2.0, torch.Generator().manual_seed(0))
    rough = (seq[:, 1:, :, :2] - seq[:, :-1, :, :2]).abs().mean()
    assert (out[:, 1:, :, :2] - out[:, :-1, :, :2]).abs().mean() < 0.6 * rough
    const = torch.ones(2, 20, 17, 3)
    assert torch.allclose(aug.smooth(const, 1.0, 2.0, torch.Generator()), const)  # constants are untouched


def test_deterministic_by_seed():
    seq = _batch()
    cfg = AugmentConfig()
    a = aug.augment(seq, 24, cfg, torch.Generator().manual_seed(7))
    b = aug.augment(seq, 24, cfg, torch.Generator().manual_seed(7))
    c = aug.augment(seq, 24, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_no_augmentation_is_a_plain_crop():
    seq = _batch(t=24)
    assert torch.allclose(aug.augment(seq, 24, NO_AUG, torch.Generator()), seq)


def test_center_window():
    seq = torch.arange(10.0)[None, :, None, None].expand(1, 10, 17, 3)
    assert aug.center_window(seq, 4)[0, :, 0, 0].tolist() == [3, 4, 5, 6]
    assert aug.center_window(seq[:, :3], 5)[0, :, 0, 0].tolist() == [0, 1, 2, 0, 1]


def test_bad_config_and_shape():
    with pytest.raises(GaitforecastError, match="p_mirror"):
        AugmentConfig(p_mirror=1.5)
    with pytest.raises(GaitforecastError, match="pace_min"):
        AugmentConfig(pace_min=3, pace_max=2)
    with pytest.raises(GaitforecastError, match=r"\[B, T, 17, 3\]"):
        aug.augment(torch.zeros(2, 10, 18, 2), 5, AugmentConfig(), torch.Generator())


def test_squeeze_scales_x_only_within_range():
    seq = _batch(b=64)
    out = aug.squeeze(seq, 0.4, torch.Generator().manual_seed(0))
    ratio = out[:, 0, 5, 0] / seq[:, 0, 5, 0]
    assert (ratio >= 0.4 - 1e-6).all() and (ratio <= 1 + 1e-6).all() and ratio.std() > 0.1
    assert torch.allclose(out[..., 0], seq[..., 0] * ratio[:, None, None])  # one factor per sequence
    assert torch.equal(out[..., 1:], seq[..., 1:])
    assert torch.equal(aug.squeeze(seq, 1.0, torch.Generator()), seq)

"""Tracks whose view changes along the walk, second-camera renders, and the two kinds of SSL positive pairs."""

import numpy as np
import pandas as pd
import pytest
import torch

from gaitforecast.data.augment import AugmentConfig, two_views
from gaitforecast.data.corpus import PretrainPool
from gaitforecast.data.world import Walks, WorldConfig, random_walks, render, sample_identities, track_walks
from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import JOINT
from gaitforecast.sweep.spec import validate
from gaitforecast.train.evaluate import load_pool, multicam_partners

CFG = WorldConfig(frames=100)


def _walks(n: int, yaw: float, **kw) -> Walks:
    return Walks(identity=np.arange(n), yaw=np.full(n, yaw), pitch=np.full(n, 5.0), distance=np.full(n, 6.0), **kw)


def _hip_spread(x: np.ndarray) -> np.ndarray:
    """Image distance between the hips [N, T], relative to the body's image height: large facing the camera,
    near 0 in a side view."""
    hips = np.abs(x[:, :, JOINT["left_hip"], 0] - x[:, :, JOINT["right_hip"], 0])
    height = x[:, :, [JOINT["left_ankle"], JOINT["right_ankle"]], 1].mean(-1) - x[:, :, 0, 1]
    return hips / np.maximum(height, 1.0)


def test_a_track_with_a_still_camera_renders_like_a_plain_walk():
    ids = sample_identities(6, np.random.default_rng(0))
    plain = render(CFG, ids, _walks(6, 40.0), seed=3)
    # a vanishing distance drift takes the per-frame camera path; it must agree with the fixed camera
    track = render(CFG, ids, _walks(6, 40.0, distance_rate=np.full(6, 1e-9)), seed=3)
    kept = (plain[..., 2] > 0) & (track[..., 2] > 0)
    assert kept.mean() > 0.9
    np.testing.assert_allclose(track[kept][:, :2], plain[kept][:, :2], atol=0.05)


def test_a_turning_track_goes_from_a_front_view_to_side_views():
    ids = sample_identities(40, np.random.default_rng(1))
    still = render(WorldConfig(frames=100, noise=0.0), ids, _walks(40, 0.0), seed=5)
    turning = render(WorldConfig(frames=100, noise=0.0), ids, _walks(40, 0.0, yaw_rate=np.full(40, 90.0)), seed=5)
    mid, later = 49, 49 + 25  # 25 frames = 1 s at 25 fps: the turning walker is at yaw ~90 deg
    assert np.median(_hip_spread(still)[:, later]) > 0.1  # facing the camera: hips apart in the image
    assert np.median(_hip_spread(turning)[:, mid]) > 0.1
    assert np.median(_hip_spread(turning)[:, later]) < 0.35 * np.median(_hip_spread(turning)[:, mid])


def test_track_walks_add_turns_without_changing_the_plain_draws():
    a = random_walks(np.arange(50), np.random.default_rng(2))
    b = track_walks(np.arange(50), np.random.default_rng(2), turn_rate=60.0, approach_rate=0.1)
    np.testing.assert_array_equal(a.yaw, b.yaw)
    np.testing.assert_array_equal(a.noise, b.noise)
    assert np.abs(b.yaw_rate).max() <= 60.0 and np.abs(b.yaw_rate).mean() > 15.0
    assert np.abs(b.distance_rate).max() <= 0.1
    assert np.all(a.yaw_rate == 0)


def test_the_pool_holds_each_track_from_a_second_camera(tmp_path):
    pool = PretrainPool.open(tmp_path, 64, frames=40, seed=0, turn_rate=90.0, approach_rate=0.15)
    first, second = np.asarray(pool.sequences), np.asarray(pool.second)
    assert first.shape == second.shape == (64, 40, 17, 3)
    assert np.abs(first[..., :2] - second[..., :2]).mean() > 5.0  # another view, in pixels
    # the same walk: the walker's vertical bob (pelvis height in the image) keeps its timing in both cameras
    def bob(x: np.ndarray) -> np.ndarray:
        y = x[:, :, [JOINT["left_hip"], JOINT["right_hip"]], 1].mean(-1)
        y = y - y.mean(1, keepdims=True)
        return y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-9)

    corr = (bob(first) * bob(second)).sum(1)
    assert np.median(corr) > 0.5
    assert pool.manifest["turn_rate"] == 90.0 and pool.manifest["cameras"] == 2
    straight = PretrainPool.open(tmp_path, 64, frames=40, seed=0)
    assert straight.path != pool.path  # a different world gets its own cache
    with pytest.raises(GaitforecastError, match="turn_rate"):
        PretrainPool.open(tmp_path, 64, frames=40, turn_rate=-1.0)


def test_two_views_cut_the_second_view_from_the_partner():
    gen = torch.Generator().manual_seed(0)
    seq = torch.randn(4, 40, 17, 3)
    seq[..., 2] = 1.0
    partner = torch.zeros_like(seq)  # every joint missing: a view of it is all zeros
    v1, v2 = two_views(seq, 24, AugmentConfig(), gen, partner)
    assert v1.abs().sum() > 0 and v2.abs().sum() == 0
    w1, w2 = two_views(seq, 24, AugmentConfig(), torch.Generator().manual_seed(0))
    assert w2.abs().sum() > 0  # without a partner both views come from the track itself


def test_multicam_partners_pair_views_of_one_walk():
    meta = pd.DataFrame({"id": ["a", "a", "a", "b", "b", "c"], "type": ["nm-01", "nm-01", "nm-01", "nm-01", "bg-01", "nm-01"],
                         "view": ["000", "090", "180", "090", "090", "000"]})
    partner = multicam_partners(meta)
    assert list(partner[:3]) == [1, 2, 0]  # the next other view of the same walk, cyclically
    assert list(partner[3:]) == [3, 4, 5]  # single-view walks pair with themselves (track pairs)
    assert list(multicam_partners(pd.DataFrame({"id": ["a", "b"]}))) == [0, 1]


def test_pairs_option_is_validated_and_reaches_the_pool(tmp_path):
    raw = {"data": {"pool_sequences": 64, "heldout_sequences": 8, "pool_frames": 40, "frames": 16,
                    "pairs": "multicam", "turn_rate": 30.0}, "grid": [{"arch": "gaitformer", "widths": [8], "fractions": [1.0]}]}
    spec = validate(raw)
    assert spec.data.pairs == "multicam" and spec.data.turn_rate == 30.0
    with pytest.raises(GaitforecastError, match="data.pairs = 'views' is not allowed; allowed values: track, multicam"):
        validate({**raw, "data": {**raw["data"], "pairs": "views"}})
    with pytest.raises(GaitforecastError, match="data.turn_rate"):
        validate({**raw, "data": {**raw["data"], "turn_rate": 1000}})
    from dataclasses import asdict

    data = asdict(spec.data)
    multicam = load_pool(tmp_path, data)
    assert multicam.second is not None and multicam.second.shape == multicam.sequences.shape
    first, partner = multicam.pair(torch.tensor([0, 5]))
    assert not torch.equal(first, partner)
    track = load_pool(tmp_path, {**data, "pairs": "track"})
    first, partner = track.pair(torch.tensor([0, 5]))
    assert track.second is None and partner is first
    torch.testing.assert_close(track.sequences, multicam.sequences)  # the same camera-1 tracks either way

"""The synthetic gait world: shapes, determinism, views, covariates and the pose-estimator model."""

import numpy as np
import pytest

from gaitforecast.data.world import Walks, WorldConfig, random_walks, render, sample_identities
from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import JOINT, normalize

CLEAN = WorldConfig(noise=0.0)


def _ids(n: int = 8, seed: int = 0) -> dict:
    return sample_identities(n, np.random.default_rng(seed))


def _walks(yaw: float, n: int = 8, **kw) -> Walks:
    return Walks(identity=np.arange(n), yaw=np.full(n, yaw), pitch=np.full(n, 5.0), distance=np.full(n, 5.0), **kw)


def test_config_hash_is_stable_and_tracks_every_field():
    assert WorldConfig().config_hash() == WorldConfig().config_hash()
    assert len(WorldConfig().config_hash()) == 16
    assert WorldConfig(noise=1.5).config_hash() != WorldConfig().config_hash()
    assert WorldConfig(frames=30).config_hash() != WorldConfig().config_hash()
    with pytest.raises(GaitforecastError, match="frames"):
        WorldConfig(frames=1)


def test_output_is_estimator_like():
    rng = np.random.default_rng(0)
    walks = random_walks(rng.integers(0, 8, 600), rng)
    x = render(WorldConfig(), _ids(), walks, seed=1)
    assert x.shape == (600, 60, 17, 3) and x.dtype == np.float32
    assert np.isfinite(x).all()
    conf = x[..., 2]
    assert conf.min() >= 0 and conf.max() <= 1
    dropped = conf == 0
    assert np.all(x[dropped][:, :2] == 0)  # dropped joints come as (0, 0, 0)
    assert 0.005 < dropped.mean() < 0.08
    kept = x[~dropped]
    assert 0.4 < kept[:, 2].mean() < 0.95
    W, H = WorldConfig().image_size
    inside = (kept[:, 0] > 0) & (kept[:, 0] < W) & (kept[:, 1] > 0) & (kept[:, 1] < H)
    assert inside.mean() > 0.97
    # Image y points down: the nose is above (smaller y than) the ankles.
    ok = (conf[..., 0] > 0) & (conf[..., JOINT["left_ankle"]] > 0)
    assert (x[..., 0, 1] < x[..., JOINT["left_ankle"], 1])[ok].mean() > 0.99


def test_deterministic_by_seed_and_independent_of_threads():
    rng = np.random.default_rng(3)
    walks = random_walks(rng.integers(0, 8, 1100), rng)  # spans 3 seed blocks
    a = render(WorldConfig(), _ids(), walks, seed=7, threads=1)
    b = render(WorldConfig(), _ids(), walks, seed=7, threads=2)
    c = render(WorldConfig(), _ids(), walks, seed=8, threads=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1.0
    np.testing.assert_array_equal(sample_identities(5, np.random.default_rng(1))["style"],
                                  sample_identities(5, np.random.default_rng(1))["style"])


def test_views_change_the_image_and_left_right_follow_the_camera():
    ids = _ids()
    front = render(CLEAN, ids, _walks(0.0), seed=0)
    side = render(CLEAN, ids, _walks(90.0), seed=0)
    back = render(CLEAN, ids, _walks(180.0), seed=0)
    ls, rs = JOINT["left_shoulder"], JOINT["right_shoulder"]
    # Walking towards the camera the person's left is on the image right; walking away, on the left.
    assert (front[..., ls, 0] > front[..., rs, 0]).mean() > 0.99
    assert (back[..., ls, 0] < back[..., rs, 0]).mean() > 0.99
    # A side view shows the stride: ankles spread far more horizontally than from the front.
    spread = lambda s: np.abs(normalize(s)[..., 15, 0] - normalize(s)[..., 16, 0]).mean()  # noqa: E731
    assert spread(side) > 3 * spread(front)
    # Side view walking left to right: the nose moves to larger x over time.
    assert (side[:, -1, 0, 0] > side[:, 0, 0, 0]).all()


def test_same_person_varies_between_walks_but_less_than_between_people():
    ids = _ids(20)
    walks = Walks(identity=np.repeat(np.arange(20), 2), yaw=np.full(40, 90.0), pitch=np.zeros(40),
                  distance=np.full(40, 5.0))
    x = normalize(render(CLEAN, ids, walks, seed=0))[..., :2]
    feat = np.concatenate([x.mean(1).reshape(40, -1), x.std(1).reshape(40, -1)], axis=1)
    a, b = feat[0::2], feat[1::2]
    within = np.linalg.norm(a - b, axis=1).mean()
    between = np.linalg.norm(a - np.roll(b, 1, axis=0), axis=1).mean()
    assert within > 0.005  # not a constant fingerprint
    assert between > 1.5 * within


def test_covariates_bag_phone_coat_speed():
    ids = _ids()
    base = render(CLEAN, ids, _walks(90.0), seed=0, space="world")
    one = np.ones(8)
    bag = render(CLEAN, ids, _walks(90.0, bag=one), seed=0, space="world")
    phone = render(CLEAN, ids, _walks(90.0, phone=one), seed=0, space="world")
    coat = render(CLEAN, ids, _walks(90.0, coat=one), seed=0, space="world")
    fast = render(CLEAN, ids, _walks(90.0, speed=1.3 * one), seed=0, space="world")

    def swing(s, side):  # forward range of the wrist relative to the shoulder, per walk
        rel = s[:, :, JOINT[side + "_wrist"], 0] - s[:, :, JOINT[side + "_shoulder"], 0]
        return rel.max(1) - rel.min(1)

    both = lambda s: np.minimum(swing(s, "left"), swing(s, "right"))  # noqa: E731  the damped arm
    assert np.all(both(bag) < 0.6 * both(base))
    ratio = both(phone) / both(base)  # the phone arm only keeps its small personal style wobble
    assert ratio.mean() < 0.3 and ratio.max() < 0.5
    head_drop = (base[:, :, 0, 2] - base[:, :, 5:7, 2].mean(-1)) - (phone[:, :, 0, 2] - phone[:, :, 5:7, 2].mean(-1))
    assert head_drop.mean() > 0.01  # head pitched down towards the phone
    hips = lambda s: s[:, :, 11:13, 2].mean()  # noqa: E731
    assert hips(coat) < hips(base) - 0.03
    travel = lambda s: (s[:, -1, 11, 0] - s[:, 0, 11, 0]).mean()  # noqa: E731
    assert travel(fast) > 1.15 * travel(base)


def test_estimator_swaps_drops_and_noise_knobs():
    ids = _ids()
    walks = _walks(0.0)
    swaps = WorldConfig(jitter=0.0, drop_rate=0.0, swap_rate=0.5)
    x = render(swaps, ids, walks, seed=0)
    clean = render(CLEAN, ids, walks, seed=0)
    lh, rh = JOINT["left_hip"], JOINT["right_hip"]
    swapped = np.abs(x[..., lh, 0] - clean[..., rh, 0]) < 1e-3
    assert 0.08 < swapped.mean() < 0.25  # p = 0.5 * 0.3 in a frontal view
    np.testing.assert_allclose(x[swapped][:, [lh, rh], :2], clean[swapped][:, [rh, lh], :2], atol=1e-3)
    assert (clean[..., 2] == 0).sum() == 0  # noise 0: nothing dropped
    noisy = render(WorldConfig(noise=2.0), ids, walks, seed=0)
    jerk = lambda s: np.abs(np.diff(normalize(s)[..., :2], 2, axis=1)).mean()  # noqa: E731
    assert jerk(noisy) > 2 * jerk(clean)


def test_bad_walks_are_rejected():
    with pytest.raises(GaitforecastError, match="Walks.yaw"):
        Walks(identity=np.arange(3), yaw=np.zeros(2), pitch=np.zeros(3), distance=np.ones(3))
    with pytest.raises(GaitforecastError, match="identities"):
        render(WorldConfig(), _ids(2), _walks(0.0, n=3), seed=0)
    with pytest.raises(GaitforecastError, match="space"):
        render(WorldConfig(), _ids(), _walks(0.0), seed=0, space="3d")

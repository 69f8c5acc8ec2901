"""Joint layouts, mirroring and normalisation (gaitforecast.skeleton)."""

import numpy as np
import pytest

from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import (
    COCO17_BONES, COCO17_NAMES, COCO17_PARENTS, COCO17_SWAP, GAITPT18_FROM_COCO, GAITPT_STAGE_TOKENS, JOINT,
    OPENPOSE18_TO_COCO17, body_height, hierarchy, mirror, normalize, to_gaitpt,
)


def _pose(seed: int = 0, n: int = 2, t: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    seq = np.zeros((n, t, 17, 3), np.float32)
    seq[..., 0] = rng.uniform(100, 200, (n, t, 17))
    seq[..., 1] = rng.uniform(50, 250, (n, t, 17))
    seq[..., 2] = rng.uniform(0.3, 1.0, (n, t, 17))
    return seq


def test_swap_map_pairs_left_with_right():
    assert sorted(COCO17_SWAP) == list(range(17))
    assert all(COCO17_SWAP[COCO17_SWAP[i]] == i for i in range(17))  # involution
    for i, name in enumerate(COCO17_NAMES):
        partner = COCO17_NAMES[COCO17_SWAP[i]]
        if name.startswith("left_"):
            assert partner == "right_" + name[5:]
        elif name.startswith("right_"):
            assert partner == "left_" + name[6:]
        else:
            assert partner == name == "nose"


def test_bones_and_parents_are_valid():
    assert len(COCO17_BONES) == 19
    assert all(0 <= a < 17 and 0 <= b < 17 and a != b for a, b in COCO17_BONES)
    assert COCO17_PARENTS[JOINT["left_knee"]] == JOINT["left_hip"]
    assert COCO17_PARENTS[JOINT["right_wrist"]] == JOINT["right_elbow"]


def test_openpose_map_names_match():
    openpose = ["nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                "right_eye", "left_eye", "right_ear", "left_ear"]
    assert [openpose[i] for i in OPENPOSE18_TO_COCO17] == list(COCO17_NAMES)


def test_gaitpt_order_and_hierarchy():
    assert len(GAITPT18_FROM_COCO) == 18
    assert GAITPT18_FROM_COCO.count(0) == 2  # the nose is used twice
    assert GAITPT18_FROM_COCO[12:15] == (11, 13, 15)  # left leg
    h = hierarchy()
    assert [len(s) for s in h] == list(GAITPT_STAGE_TOKENS) == [18, 6, 3, 1]
    assert h[1][2] == [6, 7, 8]
    assert h[2] == [[0, 1], [2, 3], [4, 5]]  # head, upper, lower
    assert h[3] == [[0, 1, 2]]
    seq = _pose()
    g = to_gaitpt(seq)
    assert g.shape == (2, 8, 18, 2)
    np.testing.assert_array_equal(g[..., 5, :], seq[..., JOINT["right_ear"], :2])


def test_mirror_swaps_and_negates_x():
    seq = normalize(_pose())
    m = mirror(seq)
    np.testing.assert_allclose(m[..., JOINT["left_hip"], 0], -seq[..., JOINT["right_hip"], 0])
    np.testing.assert_allclose(m[..., JOINT["left_hip"], 1], seq[..., JOINT["right_hip"], 1])
    np.testing.assert_array_equal(mirror(m), seq)


def test_normalize_centres_and_is_scale_and_shift_invariant():
    seq = _pose()
    out = normalize(seq)
    assert out.dtype == np.float32 and out.shape == seq.shape
    pelvis = out[..., [11, 12], :2].mean(axis=-2)
    np.testing.assert_allclose(pelvis, 0, atol=1e-5)
    assert np.allclose(body_height(out), 1.0, atol=1e-5)
    moved = seq.copy()
    moved[..., :2] = moved[..., :2] * 3.7 + np.array([40.0, -13.0], np.float32)
    np.testing.assert_allclose(normalize(moved), out, atol=1e-5)
    np.testing.assert_array_equal(out[..., 2], seq[..., 2])


def test_normalize_zeroes_unconfident_joints_and_handles_missing_hips():
    seq = _pose()
    seq[0, :, JOINT["left_wrist"], :] = 0.0
    seq[1, 3, [11, 12], 2] = 0.0  # both hips missing in one frame
    out = normalize(seq)
    assert np.all(out[0, :, JOINT["left_wrist"]] == 0)
    assert np.isfinite(out).all()


def test_body_height_nan_without_usable_frames_and_bad_shape_errors():
    seq = _pose()
    seq[1, ..., 2] = 0.0
    h = body_height(seq)
    assert np.isfinite(h[0]) and np.isnan(h[1])
    assert np.isfinite(normalize(seq)).all()
    with pytest.raises(GaitforecastError, match=r"\[\.\.\., T, 17, 3\]"):
        normalize(np.zeros((4, 18, 3)))

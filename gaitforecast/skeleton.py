"""Joint layouts and normalisation shared by the synthetic world, the loaders and the models.

Everything the rest of the package knows about joints lives here:

- COCO-17 (x, y, confidence), the layout pose estimators emit and CASIA-B / GREW / Gait3D poses use;
- its left/right swap map (for mirroring) and bone list;
- the GaitPT 18-joint ordering (the nose duplicated, joints regrouped into six 3-joint limbs) and the
  hierarchy 18 joints -> 6 limbs -> 3 groups (head, upper, lower) -> 1 body;
- normalisation that centres on the pelvis and scales by a per-sequence body height, so stride length and
  bounce survive (per-frame height scaling would erase them).
"""

from __future__ import annotations

import warnings

import numpy as np

from gaitforecast.errors import GaitforecastError

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_COCO = 17
JOINT = {name: i for i, name in enumerate(COCO17_NAMES)}

# Mirroring a person swaps their left and right joints.
COCO17_SWAP: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

# The official COCO skeleton (19 edges, 0-based).
COCO17_BONES: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12),
    (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
    (3, 5), (4, 6),
)

# Parent of each joint (index = child) for bone features, as in GaitGraph/OpenGait (the nose hangs from the
# left shoulder; shoulders from the nose; hips from the shoulders).
COCO17_PARENTS: tuple[int, ...] = (5, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)

# OpenPose-18 (OU-MVLP-Pose, DenseGait) -> COCO-17: the OpenPose index of each COCO joint (the neck is dropped).
OPENPOSE18_TO_COCO17: tuple[int, ...] = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)

# GaitPT input: six 3-joint limbs built from COCO-17, the nose used twice.
GAITPT_LIMBS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("head_left", (0, 1, 3)),
    ("head_right", (0, 2, 4)),
    ("left_arm", (5, 7, 9)),
    ("right_arm", (6, 8, 10)),
    ("left_leg", (11, 13, 15)),
    ("right_leg", (12, 14, 16)),
)
GAITPT18_FROM_COCO: tuple[int, ...] = tuple(j for _, limb in GAITPT_LIMBS for j in limb)
NUM_GAITPT = len(GAITPT18_FROM_COCO)  # 18

# Hierarchy as token groupings of the previous stage (GaitPT "head-upper-lower").
# Stage 1: 18 joint tokens. Stage 2: 6 limb tokens, each 3 consecutive joints.
# Stage 3: 3 group tokens, each 2 consecutive limbs. Stage 4: 1 body token from the 3 groups.
GAITPT_STAGE_TOKENS: tuple[int, ...] = (18, 6, 3, 1)
GAITPT_GROUPS: tuple[str, ...] = ("head", "upper", "lower")
GAITPT_MERGE: tuple[int, ...] = (1, 3, 2, 3)  # tokens of the previous stage merged into one token


def hierarchy() -> list[list[list[int]]]:
    """For each stage, the list of previous-stage token indices merged into each token.

    Stage 0 maps joints to themselves; e.g. ``hierarchy()[1][2] == [6, 7, 8]`` (the left arm's joints).
    """
    stages: list[list[list[int]]] = []
    for n_tokens, merge in zip(GAITPT_STAGE_TOKENS, GAITPT_MERGE):
        stages.append([list(range(t * merge, (t + 1) * merge)) for t in range(n_tokens)])
    return stages


def _check_coco(seq: np.ndarray, what: str = "sequence") -> None:
    if seq.ndim < 2 or seq.shape[-2] != NUM_COCO or seq.shape[-1] not in (2, 3):
        raise GaitforecastError(
            f"{what}: expected an array [..., T, 17, 3] (COCO-17 x, y, confidence), got shape {tuple(seq.shape)}"
        )


def mirror(seq: np.ndarray) -> np.ndarray:
    """Mirror COCO-17 poses horizontally about x = 0 and swap left/right joints.

    Works on normalised (pelvis-centred) data; raw pixel data should be normalised first.
    """
    _check_coco(seq)
    out = seq[..., COCO17_SWAP, :].copy()
    out[..., 0] = -out[..., 0]
    return out


def body_height(seq: np.ndarray) -> np.ndarray:
    """Per-sequence body-size scale: median over frames of the vertical extent of confident joints.

    ``seq`` is [..., T, 17, 3]; returns [...]. Frames with fewer than 4 confident joints are ignored;
    a sequence with no usable frame gets NaN (the caller decides whether to skip it).
    """
    _check_coco(seq)
    conf = seq[..., 2] > 0 if seq.shape[-1] == 3 else np.ones(seq.shape[:-1], bool)
    y = seq[..., 1]
    ymax = np.where(conf, y, -np.inf).max(axis=-1)
    ymin = np.where(conf, y, np.inf).min(axis=-1)
    extent = ymax - ymin
    usable = (conf.sum(axis=-1) >= 4) & np.isfinite(extent) & (extent > 0)
    extent = np.where(usable, extent, np.nan)
    with warnings.catch_warnings():  # all-NaN sequences are expected and reported as NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(extent, axis=-1)


def normalize(seq: np.ndarray) -> np.ndarray:
    """Centre each frame on the pelvis and divide by the sequence's body height.

    Input [..., T, 17, 3] in any units (pixels or the synthetic world's metres, y up or down).
    Output has the same shape, float32, with unconfident joints (confidence 0) placed at the pelvis so
    they carry no position. The confidence channel is kept unchanged. Scale-free: multiplying the input
    coordinates by a constant gives the same output.
    """
    _check_coco(seq)
    seq = np.asarray(seq, dtype=np.float32)
    if seq.shape[-1] == 2:
        seq = np.concatenate([seq, np.ones(seq.shape[:-1] + (1,), np.float32)], axis=-1)
    conf = seq[..., 2:3] > 0
    hips = seq[..., [JOINT["left_hip"], JOINT["right_hip"]], :2]
    hip_ok = conf[..., [JOINT["left_hip"], JOINT["right_hip"]], :]
    n_ok = hip_ok.sum(axis=-2)
    pelvis = np.where(n_ok > 0, (hips * hip_ok).sum(axis=-2) / np.maximum(n_ok, 1), np.nan)  # [..., T, 2]
    # Frames whose hips are both missing borrow the mean of their confident joints.
    n_conf = conf.sum(axis=-2)
    fallback = (seq[..., :2] * conf).sum(axis=-2) / np.maximum(n_conf, 1)
    pelvis = np.where(np.isnan(pelvis), fallback, pelvis)
    scale = body_height(seq)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0).astype(np.float32)
    xy = (seq[..., :2] - pelvis[..., None, :]) / scale[..., None, None, None]
    xy = np.where(conf, xy, 0.0)
    return np.concatenate([xy, seq[..., 2:3]], axis=-1).astype(np.float32)


def to_gaitpt(seq: np.ndarray) -> np.ndarray:
    """COCO-17 [..., T, 17, C] -> GaitPT order [..., T, 18, 2] (x, y only; confidence dropped)."""
    _check_coco(seq)
    return np.ascontiguousarray(seq[..., GAITPT18_FROM_COCO, :2])

"""The generator's gait against published healthy-adult ranges (research/data.md 3.3-3.4).

Measured from the clean 3D joints the world renders (not read back from its parameters): cadence from the
ankle's stride frequency, stride length from pelvis travel per stride, knee flexion from the thigh-shank angle,
hip flexion from the thigh's angle to vertical in the sagittal plane.
"""

import numpy as np
import pytest

from gaitforecast.data.world import Walks, WorldConfig, render, sample_identities
from gaitforecast.skeleton import JOINT

N, FPS, T = 150, 25.0, 300


@pytest.fixture(scope="module")
def gait():
    ids = sample_identities(N, np.random.default_rng(11))
    walks = Walks(identity=np.arange(N), yaw=np.full(N, 90.0), pitch=np.zeros(N), distance=np.full(N, 5.0))
    x = render(WorldConfig(frames=T, fps=FPS), ids, walks, seed=5, space="world")
    thigh = x[:, :, JOINT["left_knee"]] - x[:, :, JOINT["left_hip"]]
    shank = x[:, :, JOINT["left_ankle"]] - x[:, :, JOINT["left_knee"]]
    cos = (thigh * shank).sum(-1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shank, axis=-1)
    knee = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    hip = np.degrees(np.arctan2(thigh[..., 0], -thigh[..., 2]))
    pelvis = x[:, :, [JOINT["left_hip"], JOINT["right_hip"]]].mean(axis=2)
    rel = x[:, :, JOINT["left_ankle"], 0] - pelvis[..., 0]
    spec = np.abs(np.fft.rfft(rel - rel.mean(1, keepdims=True), n=8192, axis=1))
    stride_hz = np.fft.rfftfreq(8192, 1 / FPS)[spec.argmax(1)]
    speed = (pelvis[:, -1, 0] - pelvis[:, 0, 0]) / ((T - 1) / FPS)
    pz = pelvis[..., 2] - pelvis[..., 2].mean(1, keepdims=True)
    bounce_hz = np.fft.rfftfreq(8192, 1 / FPS)[np.abs(np.fft.rfft(pz, n=8192, axis=1)).argmax(1)]
    return {"bounce_cm": 100 * (pz.max(1) - pz.min(1)), "bounce_ratio": bounce_hz / stride_hz,
            "cadence": 120 * stride_hz, "speed": speed, "stride": speed / stride_hz, "height": ids["height"],
            "knee": knee, "hip": hip}


def test_cadence_in_healthy_range(gait):
    cad = gait["cadence"]
    assert 95 <= np.median(cad) <= 125  # steps/min, preferred speed
    assert np.percentile(cad, 5) >= 90 and np.percentile(cad, 95) <= 130


def test_speed_and_stride_length(gait):
    assert 1.1 <= np.median(gait["speed"]) <= 1.5  # m/s (normative 1.2-1.4)
    assert 1.2 <= np.median(gait["stride"]) <= 1.6  # m (normative 1.3-1.5)
    ratio = gait["stride"] / gait["height"]
    assert 0.72 <= np.median(ratio) <= 0.9
    assert np.percentile(ratio, 5) >= 0.6 and np.percentile(ratio, 95) <= 1.05


def test_knee_flexion_range(gait):
    kmin, kmax = gait["knee"].min(1), gait["knee"].max(1)
    assert 0 <= np.median(kmin) <= 10  # near-full extension at heel strike
    assert 50 <= np.median(kmax) <= 70  # swing peak ~55-65 deg (gaitkit healthy trial: 2-70)
    assert np.percentile(kmax, 95) <= 78


def test_hip_flexion_range(gait):
    hmin, hmax = gait["hip"].min(1), gait["hip"].max(1)
    assert 20 <= np.median(hmax) <= 35  # ~25-30 deg flexion at heel strike
    assert -20 <= np.median(hmin) <= -5  # ~-10 deg extension in late stance
    assert 35 <= np.median(hmax - hmin) <= 50


def test_vertical_bounce_twice_per_stride(gait):
    assert 2.5 <= np.median(gait["bounce_cm"]) <= 6  # ~3-5 cm
    np.testing.assert_allclose(np.median(gait["bounce_ratio"]), 2.0, atol=0.05)

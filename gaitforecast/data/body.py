"""Synthetic walkers: identity parameters and the 3D walking kinematics of one walk.

Use :func:`sample_identities` to draw people and :func:`walk_3d` to animate them; the camera and the
pose-estimator model live in :mod:`gaitforecast.data.world`, which is what the rest of the package calls.

The walker is a Troje-style Fourier/eigenwalker: joint angles (hip, knee, shoulder, elbow) follow a
stride-periodic template whose amplitudes, phases and offsets are personal, plus a per-joint residual of
first and second harmonics (the individual "style") and static posture offsets. Body size, segment
proportions, cadence and walk ratio (step length / cadence) complete the identity. Coordinates are metres
in a walker frame: x forward (walking direction), y to the walker's left, z up.
"""

from __future__ import annotations

import numpy as np

from gaitforecast.skeleton import JOINT, NUM_COCO

F32 = np.float32
DEG = F32(np.pi / 180)

# Segment lengths as fractions of body height (Drillis & Contini via Winter; joint-centre widths).
SEGMENTS: dict[str, float] = {
    "thigh": 0.245, "shank": 0.246, "ankle_h": 0.039, "upper_arm": 0.186, "forearm": 0.146,
    "shoulder_w": 0.22, "hip_w": 0.115, "torso": 0.288, "head": 1.0,
}
# Head keypoints relative to the mid-shoulder point, in units of height: (forward, left, up).
_HEAD = {
    "nose": (0.052, 0.0, 0.100), "left_eye": (0.042, 0.018, 0.116), "right_eye": (0.042, -0.018, 0.116),
    "left_ear": (-0.004, 0.045, 0.108), "right_ear": (-0.004, -0.045, 0.108),
}


def sample_identities(n: int, rng: np.random.Generator, style_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Draw ``n`` synthetic people; returns named parameter arrays with leading dimension ``n``.

    Ranges follow healthy adults (data.md 3.3): height 1.50-1.95 m, cadence 95-125 steps/min, walk ratio
    about 0.0055-0.0075 m per step/min, knee swing peak ~55-65 deg, arm swing 6-35 deg.
    """
    def draw(mu: float, sd: float, lo: float, hi: float, size: int | tuple = n) -> np.ndarray:
        return np.clip(rng.normal(mu, sd, size), lo, hi).astype(F32)

    p: dict[str, np.ndarray] = {"height": draw(1.70, 0.09, 1.50, 1.95)}
    for name in SEGMENTS:
        p["seg_" + name] = draw(1.0, 0.035, 0.88, 1.12)
    p["cadence"] = draw(110.0, 7.0, 95.0, 125.0)
    p["walk_ratio"] = draw(0.0064, 0.0005, 0.0055, 0.0075) * p["height"] / F32(1.70)
    p["hip_bias"] = draw(7.0, 2.0, 2.0, 12.0) * DEG
    p["hip_h2"] = draw(0.0, 2.0, -5.0, 5.0) * DEG
    p["knee_min"] = draw(4.0, 2.0, 0.0, 9.0) * DEG
    p["knee_load"] = draw(14.0, 3.0, 6.0, 22.0) * DEG
    p["knee_swing"] = draw(54.0, 4.0, 45.0, 62.0) * DEG
    p["knee_swing_at"] = draw(0.72, 0.02, 0.66, 0.78) * F32(2 * np.pi)
    p["arm_swing"] = draw(18.0, 5.0, 6.0, 35.0) * DEG
    p["arm_bias"] = draw(-2.0, 3.0, -10.0, 6.0) * DEG
    p["arm_phase"] = draw(0.0, 0.15, -0.4, 0.4)
    p["elbow_mean"] = draw(20.0, 6.0, 8.0, 40.0) * DEG
    p["elbow_swing"] = draw(10.0, 3.0, 2.0, 20.0) * DEG
    p["arm_abd"] = draw(8.0, 3.0, 1.0, 16.0) * DEG
    p["lean"] = draw(4.0, 2.5, -2.0, 11.0) * DEG
    p["head_pitch"] = draw(0.0, 4.0, -10.0, 12.0) * DEG
    p["tilt"] = draw(0.0, 1.5, -4.0, 4.0) * DEG
    p["pelvis_rot"] = draw(5.0, 1.5, 1.5, 9.0) * DEG
    p["pelvis_obl"] = draw(4.0, 1.5, 1.0, 7.0) * DEG
    p["bounce"] = draw(0.02, 0.004, 0.012, 0.03)  # amplitude: 2-6 cm peak to peak
    p["sway"] = draw(0.015, 0.004, 0.006, 0.025)
    p["step_w"] = draw(0.10, 0.025, 0.04, 0.16)
    # Left/right asymmetry (right side relative to left).
    p["asym_hip"] = draw(0.0, 0.05, -0.15, 0.15)
    p["asym_knee"] = draw(0.0, 0.05, -0.15, 0.15)
    p["asym_arm"] = draw(0.0, 0.15, -0.4, 0.4)
    p["asym_leg"] = draw(0.0, 0.012, -0.03, 0.03)
    p["asym_phase"] = draw(0.0, 0.04, -0.1, 0.1)
    # Eigenwalker style: per-joint 1st/2nd harmonic residuals (cos1, sin1, cos2, sin2) and static offsets,
    # in units of height.
    p["style"] = (rng.normal(0, 0.007 * style_scale, (n, 4, 3, NUM_COCO))).astype(F32)
    p["offset"] = (rng.normal(0, 0.009 * style_scale, (n, 3, NUM_COCO))).astype(F32)
    return p


def _smooth(rng: np.random.Generator, n: int, frames: int, knots: int = 6, dims: int = 1) -> np.ndarray:
    """Smooth unit-variance noise [n, frames, dims] by linear interpolation between random knots."""
    pos = np.linspace(0, knots - 1, frames)
    lo = np.minimum(pos.astype(int), knots - 2)
    frac = (pos - lo).astype(F32)
    interp = np.zeros((frames, knots), F32)
    interp[np.arange(frames), lo] = 1 - frac
    interp[np.arange(frames), lo + 1] = frac
    k = rng.standard_normal((n, knots, dims), dtype=F32)
    return interp @ k


def _vm(phase: np.ndarray, mu: np.ndarray | float, kappa: float) -> np.ndarray:
    """Periodic bump (von Mises shape, peak 1) centred at ``mu``."""
    return np.exp(F32(kappa) * (np.cos(phase - mu) - F32(1.0)))


def walk_3d(p: dict[str, np.ndarray], cov: dict[str, np.ndarray], frames: int, fps: float,
            rng: np.random.Generator, stride_jitter: float, drift: float) -> tuple[np.ndarray, np.ndarray]:
    """Animate one walk per row of ``p`` (identity params gathered per walk) under covariates ``cov``.

    ``cov`` holds float arrays [N]: speed (factor, 1 = preferred), bag (0/1), bag_side (+1 left, -1 right),
    coat (0/1), phone (0/1), phone_side. ``drift`` scales the session-level variation of this walk.
    Returns (joints [3, N, frames, 17]: x, y, z planes in metres, the walk along +x centred on the origin
    at mid-sequence, pelvis forward travel [N, frames]).
    """
    n = p["height"].shape[0]
    h = p["height"][:, None]
    sd = lambda s: (F32(1) + rng.normal(0, s * drift, n).astype(F32))  # noqa: E731  session drift factor
    speed = cov["speed"].astype(F32)
    bag, coat, phone = cov["bag"].astype(F32), cov["coat"].astype(F32), cov["phone"].astype(F32)
    cadence = p["cadence"] * speed ** F32(0.5) * sd(0.03) * (F32(1) - F32(0.05) * phone)
    step = p["walk_ratio"] * p["cadence"] * speed ** F32(0.5) * sd(0.025) * (F32(1) - F32(0.04) * bag)
    stride_hz = cadence / F32(120.0)
    # Phase with stride-to-stride timing jitter, integrated from a smooth frequency fluctuation.
    jit = _smooth(rng, n, frames, knots=max(4, frames // 12), dims=3)
    freq = stride_hz[:, None] * (F32(1) + F32(stride_jitter) * jit[..., 0])
    phi0 = rng.uniform(0, 2 * np.pi, n).astype(F32)
    phi = phi0[:, None] + F32(2 * np.pi / fps) * np.cumsum(freq, axis=1, dtype=F32)
    travel = (phi - phi0[:, None]) / F32(2 * np.pi) * (2 * step)[:, None]
    amp_jit = F32(1) + F32(0.03) * jit[..., 1]
    arm_jit = F32(1) + F32(0.06) * jit[..., 2]

    seg = {k: (p["seg_" + k] * p["height"] * F32(v))[:, None] for k, v in SEGMENTS.items() if k != "head"}
    leg = seg["thigh"] + seg["shank"]
    # Hip flexion amplitude follows step length (foot travel ~ 2 L sin(A), ~80% of it from the thigh,
    # the rest from knee extension and pelvis rotation), so stride and angles agree.
    hip_amp = F32(0.8) * np.arcsin(np.clip(step[:, None] / (F32(2.0) * leg), 0, 0.9)) * amp_jit * sd(0.03)[:, None]
    out = np.empty((3, n, frames, NUM_COCO), F32)  # planar (x, y, z) planes: contiguous writes
    X, Y, Z = out
    cphi, sphi, c2phi = np.cos(phi), np.sin(phi), np.cos(2 * phi)
    pelvis_z = (seg["thigh"] + seg["shank"] + seg["ankle_h"]) * F32(0.975) - p["bounce"][:, None] * c2phi
    sway = p["sway"][:, None] * sphi
    hw, sw = seg["hip_w"] / 2, seg["shoulder_w"] / 2
    rot, obl = p["pelvis_rot"][:, None] * cphi, p["pelvis_obl"][:, None] * sphi
    # Legs (left: phase phi, right: phi + pi + asymmetry).
    for side, ph, sgn in (("left", phi, 1.0), ("right", phi + F32(np.pi) + p["asym_phase"][:, None], -1.0)):
        asym = (lambda k: F32(1) + (p[k][:, None] if side == "right" else F32(0)))
        th = p["hip_bias"][:, None] + hip_amp * asym("asym_hip") * np.cos(ph) \
            + p["hip_h2"][:, None] * np.cos(2 * ph)
        tk = p["knee_min"][:, None] + asym("asym_knee") * (
            p["knee_load"][:, None] * _vm(ph, F32(0.15 * 2 * np.pi), 12.0)
            + p["knee_swing"][:, None] * amp_jit * _vm(ph, p["knee_swing_at"][:, None], 5.0))
        tk = tk * (F32(1) + F32(0.08) * coat[:, None])  # long coat: estimator sees more knee bend
        lt, ls = seg["thigh"] * asym("asym_leg"), seg["shank"] * asym("asym_leg")
        hip = JOINT[side + "_hip"]
        hx, hy, hz = sgn * hw * rot, sgn * hw + sway, pelvis_z + sgn * hw * obl
        X[:, :, hip], Y[:, :, hip], Z[:, :, hip] = hx, hy, hz
        ky = F32(0.5) * (hy + sgn * p["step_w"][:, None] / 2)
        knee, ankle = JOINT[side + "_knee"], JOINT[side + "_ankle"]
        X[:, :, knee], Y[:, :, knee] = hx + lt * np.sin(th), ky
        Z[:, :, knee] = hz - lt * np.cos(th)
        sh = th - tk
        X[:, :, ankle], Y[:, :, ankle] = X[:, :, knee] + ls * np.sin(sh), sgn * p["step_w"][:, None] / 2
        Z[:, :, ankle] = Z[:, :, knee] - ls * np.cos(sh)
    # Trunk: lean, lateral tilt (towards a bag), counter-rotation of the shoulders.
    lean = (p["lean"] + rng.normal(0, 1.0 * float(DEG) * drift, n).astype(F32) + F32(4) * DEG * phone)[:, None]
    tilt = (p["tilt"] + F32(3) * DEG * bag * cov["bag_side"])[:, None]
    torso = seg["torso"]
    mid_x, mid_y, mid_z = torso * lean, sway + torso * tilt, pelvis_z + torso
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        j = JOINT[side + "_shoulder"]
        bag_here = bag * (cov["bag_side"] == sgn)
        X[:, :, j] = mid_x - sgn * sw * F32(0.6) * rot
        Y[:, :, j] = mid_y + sgn * sw
        Z[:, :, j] = mid_z + (F32(0.012) * p["height"] * bag_here)[:, None]
    # Head: pitched by posture + trunk lean (+ phone: looking down).
    pitch = p["head_pitch"][:, None] + lean + (F32(25) * DEG * phone)[:, None]
    cp, sp = np.cos(pitch), np.sin(pitch)
    for name, (a, b, c) in _HEAD.items():
        j = JOINT[name]
        a_, b_, c_ = (F32(v) * h * p["seg_head"][:, None] for v in (a, b, c))
        X[:, :, j] = mid_x + a_ * cp + c_ * sp
        Y[:, :, j] = mid_y + b_
        Z[:, :, j] = mid_z - a_ * sp + c_ * cp
    # Arms: contralateral swing; a bag damps one arm, a phone fixes one arm in front of the chest.
    arm_amp = p["arm_swing"] * speed ** F32(0.7) * sd(0.08)
    for side, sgn, ph in (("left", 1.0, phi + F32(np.pi)), ("right", -1.0, phi)):
        swing = -np.cos(ph + F32(np.pi) + p["arm_phase"][:, None])
        damp = F32(1) - F32(0.8) * bag * (cov["bag_side"] == sgn) - F32(0.3) * phone * (cov["phone_side"] != sgn)
        amp = (arm_amp * damp * (F32(1) + (p["asym_arm"] if side == "right" else F32(0))))[:, None] * arm_jit
        fixed = (phone * (cov["phone_side"] == sgn))[:, None]
        alpha = (F32(1) - fixed) * (p["arm_bias"][:, None] + amp * swing) + fixed * F32(25) * DEG
        eps = (F32(1) - fixed) * (p["elbow_mean"][:, None] + (p["elbow_swing"] * damp)[:, None] * swing) \
            + fixed * F32(95) * DEG
        abd = (p["arm_abd"] + F32(8) * DEG * bag * (cov["bag_side"] == sgn))[:, None]
        s, e, w = JOINT[side + "_shoulder"], JOINT[side + "_elbow"], JOINT[side + "_wrist"]
        ua, fa = seg["upper_arm"], seg["forearm"]
        X[:, :, e] = X[:, :, s] + ua * np.sin(alpha)
        Y[:, :, e] = Y[:, :, s] + sgn * ua * np.sin(abd)
        Z[:, :, e] = Z[:, :, s] - ua * np.cos(alpha)
        beta = alpha + eps
        X[:, :, w] = X[:, :, e] + fa * np.sin(beta)
        Y[:, :, w] = Y[:, :, e] + sgn * fa * F32(0.6) * np.sin(abd) - fixed * sgn * fa * F32(0.4)
        Z[:, :, w] = Z[:, :, e] - fa * np.cos(beta)
    # Personal style residual (1st/2nd harmonics per joint) + posture offsets, both drifting per session,
    # and a lateral offset of the walking line: one batched matmul over a (1, cos, sin, cos2, sin2) basis.
    basis = np.stack([np.ones_like(phi), cphi, sphi, c2phi, np.sin(2 * phi)], axis=-1)  # [N, T, 5]
    coef = np.empty((n, 5, 3, NUM_COCO), F32)
    coef[:, 0] = p["offset"] + rng.normal(0, 0.003 * drift, (n, 3, NUM_COCO)).astype(F32)
    coef[:, 0, 1] += (rng.normal(0, 0.3, n).astype(F32) / p["height"])[:, None]
    coef[:, 1:] = p["style"] * (F32(1) + rng.normal(0, 0.25 * drift, (n, 4, 1, 1)).astype(F32))
    coef *= p["height"][:, None, None, None]
    res = (basis @ coef.reshape(n, 5, 3 * NUM_COCO)).reshape(n, frames, 3, NUM_COCO)
    out += res.transpose(2, 0, 1, 3)
    if coat.any():  # coat hem: the estimator puts hips lower and wider, knees shifted
        shift = np.zeros((3, NUM_COCO), F32)
        for side, sgn in (("left", 1.0), ("right", -1.0)):
            shift[1, JOINT[side + "_hip"]], shift[2, JOINT[side + "_hip"]] = sgn * F32(0.02), F32(-0.035)
            shift[0, JOINT[side + "_knee"]], shift[2, JOINT[side + "_knee"]] = F32(0.01), F32(0.015)
        size = coat * p["height"] * (F32(1) + F32(0.3) * rng.standard_normal(n, dtype=F32))
        for d in range(3):
            out[d] += size[:, None, None] * shift[d]
    X += (travel - travel[:, frames // 2, None])[..., None]  # path centred on the origin at mid-sequence
    return out, travel

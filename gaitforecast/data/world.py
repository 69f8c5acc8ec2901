"""The synthetic gait world: walkers filmed by a pinhole camera and seen through a noisy pose estimator.

Use :func:`render` to turn identities (:func:`gaitforecast.data.body.sample_identities`) and a table of
walks (:class:`Walks`: who walks, camera yaw/pitch/distance, speed, bag, coat, phone, noise level) into
float32 sequences [N, T, 17, 3] of COCO-17 (x, y, confidence) in image pixels, y down, exactly what a
pose estimator emits. Everything is vectorised over sequences and deterministic by seed: sequences are
generated in fixed blocks of :data:`BLOCK` walks, each with its own seed stream, so the result does not
depend on the number of threads.

Camera yaw follows the CASIA-B convention: 0 deg = walking towards the camera, 90 deg = side view
(walking left to right in the image), 180 deg = walking away; 180-360 are the mirrored sides.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from gaitforecast.data.body import F32, sample_identities, walk_3d
from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import COCO17_SWAP, JOINT, NUM_COCO

BLOCK = 512  # walks per seed stream; fixed so results never depend on chunking or threads

# Pose-estimator noise by joint (wrists and ankles worst, face best) and drop propensity.
_NOISE_SCALE = np.array([0.6, 0.6, 0.6, 0.7, 0.7, 1.0, 1.0, 1.2, 1.2, 1.6, 1.6, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5], F32)
_DROP_SCALE = np.array([0.5, 0.8, 0.8, 1.5, 1.5, 0.4, 0.4, 1.0, 1.0, 2.0, 2.0, 0.6, 0.6, 0.8, 0.8, 1.5, 1.5], F32)
_COAT_NOISE = np.ones(NUM_COCO, F32)
_COAT_NOISE[[JOINT["left_hip"], JOINT["right_hip"], JOINT["left_knee"], JOINT["right_knee"]]] = 1.8
_COAT_NOISE[[JOINT["left_elbow"], JOINT["right_elbow"]]] = 1.3
_WRISTS = [JOINT["left_wrist"], JOINT["right_wrist"]]
_LEG_SWAP = np.arange(NUM_COCO)
_LEG_SWAP[11:17] = np.array(COCO17_SWAP)[11:17]
_ARM_SWAP = np.arange(NUM_COCO)
_ARM_SWAP[5:11] = np.array(COCO17_SWAP)[5:11]


@dataclass(frozen=True)
class WorldConfig:
    """Knobs of the generator. Its :meth:`config_hash` keys every on-disk cache of generated data.

    frames/fps: sequence length and frame rate. image_size/focal_px: the camera. style_scale: strength of
    personal style residuals (identity cues beyond body shape and cadence). session_drift: within-person
    variation between walks. stride_jitter: stride-time coefficient of variation. noise: pose-estimator
    noise multiplier (per-walk noise levels multiply it) over jitter (per-frame error, fraction of body
    height in the image), swap_rate (per-frame chance of a left/right leg swap in a side view) and
    drop_rate (per-joint, per-frame chance of a dropped joint).
    """

    frames: int = 60
    fps: float = 25.0
    image_size: tuple[int, int] = (640, 480)
    focal_px: float = 700.0
    style_scale: float = 1.0
    session_drift: float = 1.0
    stride_jitter: float = 0.02
    noise: float = 1.0
    jitter: float = 0.007
    swap_rate: float = 0.02
    drop_rate: float = 0.012
    version: int = 2  # bump when the generator's maths changes, so caches regenerate

    def __post_init__(self) -> None:
        if self.frames < 2:
            raise GaitforecastError(f"WorldConfig.frames must be >= 2, got {self.frames}")
        if self.fps <= 0 or self.focal_px <= 0:
            raise GaitforecastError("WorldConfig.fps and focal_px must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    def config_hash(self) -> str:
        """16 hex chars of sha256 over the canonical JSON of the config."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Walks:
    """One row per walk to render; every field an array [N] or a scalar for all walks (`identity` indexes
    the identity table)."""

    identity: np.ndarray
    yaw: np.ndarray  # degrees, 0 = towards the camera, 90 = side view
    pitch: np.ndarray  # degrees the camera looks down
    distance: np.ndarray  # metres from the camera to the path centre
    speed: np.ndarray | None = None  # factor, 1 = preferred speed (default 1)
    bag: np.ndarray | None = None  # 0/1 (default 0)
    coat: np.ndarray | None = None  # 0/1 (default 0)
    phone: np.ndarray | None = None  # 0/1 (default 0)
    noise: np.ndarray | None = None  # estimator noise level, 1 = typical (default 1)
    # Tracks: the view changes along the walk (a turning walker, a curved path, passing the camera).
    yaw_rate: np.ndarray | None = None  # degrees per second the yaw turns (default 0: a straight walk)
    distance_rate: np.ndarray | None = None  # log-distance change per second (< 0 approaching; default 0)

    def __post_init__(self) -> None:
        n = len(self.identity)
        defaults = {"speed": 1.0, "bag": 0.0, "coat": 0.0, "phone": 0.0, "noise": 1.0, "yaw_rate": 0.0,
                    "distance_rate": 0.0}
        for name in ("identity", "yaw", "pitch", "distance", *defaults):
            val = getattr(self, name)
            val = np.full(n, defaults[name], F32) if val is None else np.asarray(val)
            if val.ndim == 0 and name != "identity":
                val = np.full(n, val, F32)
            if val.shape != (n,):
                raise GaitforecastError(f"Walks.{name}: expected shape ({n},), got {val.shape}")
            setattr(self, name, val)

    def __len__(self) -> int:
        return len(self.identity)

    def take(self, idx: np.ndarray | slice) -> "Walks":
        return Walks(**{k: v[idx] for k, v in self.__dict__.items()})


def _camera(yaw: np.ndarray, pitch: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres [M, 3] and world->camera rotations [M, 3, 3] (rows: right, down, forward), one per row
    of the flat arrays ``yaw``, ``pitch``, ``distance`` [M]."""
    yr, pr = np.deg2rad(yaw.astype(np.float64)), np.deg2rad(pitch.astype(np.float64))
    target = np.array([0.0, 0.0, 0.9])
    centre = np.stack([distance * np.cos(yr), -distance * np.sin(yr), 0.9 + distance * np.tan(pr)], axis=1)
    fwd = target - centre
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    right = np.cross(fwd, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(fwd, right)
    return centre.astype(F32), np.stack([right, down, fwd], axis=1).astype(F32)


def _render_block(cfg: WorldConfig, ident: dict[str, np.ndarray], walks: Walks, seed_seq: np.random.SeedSequence,
                  space: str) -> np.ndarray:
    rng = np.random.default_rng(seed_seq)
    n, T = len(walks), cfg.frames
    p = {k: v[walks.identity] for k, v in ident.items()}
    side = np.where(rng.random(n) < 0.5, F32(1), F32(-1))
    cov = {"speed": walks.speed.astype(F32), "bag": walks.bag.astype(F32), "coat": walks.coat.astype(F32),
           "phone": walks.phone.astype(F32), "bag_side": side, "phone_side": -side}
    body, travel = walk_3d(p, cov, T, cfg.fps, rng, cfg.stride_jitter, cfg.session_drift)  # [3, N, T, 17]
    if space == "world":
        return np.stack(body, axis=-1)
    # Perspective projection; frontal walks start far enough away never to reach the camera.
    half_path = np.abs(travel[:, -1] - travel[:, 0]) / 2
    if np.any(walks.yaw_rate != 0) or np.any(walks.distance_rate != 0):
        right, down, depth = _project_track(walks, body, half_path, cfg.fps)
    else:
        dist = walks.distance.astype(F32) + half_path * np.abs(np.cos(np.deg2rad(walks.yaw))).astype(F32)
        centre, rot = _camera(walks.yaw, walks.pitch, dist)
        cam = rot @ body.reshape(3, n, T * NUM_COCO).transpose(1, 0, 2)  # [N, 3, T*17]: right, down, depth
        cam -= rot @ centre[:, :, None]
        right, down, depth = (cam[:, i].reshape(n, T, NUM_COCO) for i in range(3))
    W, H = cfg.image_size
    offset = rng.normal(0, 0.05, (n, 2)).astype(F32) * F32(min(W, H))
    inv = F32(cfg.focal_px) / np.maximum(depth, F32(0.3))
    u = right * inv + (F32(W / 2) + offset[:, 0, None, None])
    v = down * inv + (F32(H / 2) + offset[:, 1, None, None])
    return _estimator(cfg, u, v, depth, walks, rng)


def _project_track(walks: Walks, body: np.ndarray, half_path: np.ndarray,
                   fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame planes (right, down, depth) [N, T, 17] with a camera pose per frame: the yaw turns by
    ``yaw_rate`` deg/s and the distance changes by ``exp(distance_rate * t)`` around mid-track, as when a
    walker turns or follows a curved path past a fixed camera (the body stays in its own walking frame)."""
    _, n, T, J = body.shape
    t = (np.arange(T, dtype=np.float64) - (T - 1) / 2) / fps  # seconds from mid-track
    yaw = walks.yaw.astype(np.float64)[:, None] + walks.yaw_rate.astype(np.float64)[:, None] * t  # [N, T]
    dist = walks.distance.astype(np.float64)[:, None] * np.exp(walks.distance_rate.astype(np.float64)[:, None] * t)
    dist = dist + half_path.astype(np.float64)[:, None] * np.abs(np.cos(np.deg2rad(yaw)))
    pitch = np.broadcast_to(walks.pitch.astype(np.float64)[:, None], (n, T))
    centre, rot = _camera(yaw.ravel(), pitch.ravel(), dist.ravel())  # [N*T, 3], [N*T, 3, 3]
    pts = body.transpose(1, 2, 0, 3).reshape(n * T, 3, J)  # [N*T, 3, 17]
    cam = rot @ (pts - centre[:, :, None])  # [N*T, 3, 17]
    cam = cam.reshape(n, T, 3, J)
    return cam[:, :, 0], cam[:, :, 1], cam[:, :, 2]


def _estimator(cfg: WorldConfig, u: np.ndarray, v: np.ndarray, depth: np.ndarray, walks: Walks,
               rng: np.random.Generator) -> np.ndarray:
    """Pose-estimator model on image planes u, v [N, T, 17]: jitter, correlated drift, per-walk bias,
    L/R swaps, dropped joints, confidence. Returns [N, T, 17, 3]."""
    n, T = u.shape[:2]
    px_height = (v[:, ::5].max(axis=2) - v[:, ::5].min(axis=2)).mean(axis=1)  # [N]
    level = walks.noise.astype(F32) * F32(cfg.noise)
    coat = walks.coat.astype(F32)
    joint_scale = _NOISE_SCALE[None] * (F32(1) + coat[:, None] * (_COAT_NOISE[None] - F32(1)))  # [N, 17]
    sigma = (F32(cfg.jitter) * px_height * level)[:, None, None] * joint_scale[:, None, :]  # [N, 1, 17]
    # Temporally correlated error: a per-walk bias plus a smooth drift (linear between random knots), in
    # units of the per-frame jitter's standard deviation; interp rows sum to 1, so the bias rides along.
    knots = max(4, T // 10)
    pos = np.linspace(0, knots - 1, T)
    lo = np.minimum(pos.astype(int), knots - 2)
    frac = (pos - lo).astype(F32)
    interp = np.zeros((T, knots), F32)
    interp[np.arange(T), lo], interp[np.arange(T), lo + 1] = 1 - frac, frac
    slow = F32(1.2) * rng.standard_normal((n, knots, 2 * NUM_COCO), dtype=F32) \
        + F32(0.7) * rng.standard_normal((n, 1, 2 * NUM_COCO), dtype=F32)
    slow = interp @ (slow * F32(1 / np.sqrt(6)))  # [N, T, 34]
    sigma6 = sigma * F32(np.sqrt(6))
    err_sq = np.zeros_like(u)
    for k, plane in enumerate((u, v)):
        # Per-frame jitter is triangular (difference of two uniforms): 3x cheaper than Gaussian draws.
        err = rng.random(u.shape, dtype=F32)
        err -= rng.random(u.shape, dtype=F32)
        err += slow[:, :, k * NUM_COCO:(k + 1) * NUM_COCO]
        err *= sigma6
        plane += err
        err *= err
        err_sq += err
    # Confidence: lower for noisy estimates and for limbs on the far side of the body.
    conf_loss = np.sqrt(err_sq, out=err_sq)
    conf_loss *= (F32(4.0) / np.maximum(px_height, F32(1)))[:, None, None]  # 4 x error / body height
    pelvis_depth = F32(0.5) * (depth[:, :, JOINT["left_hip"]] + depth[:, :, JOINT["right_hip"]])
    far = depth - pelvis_depth[..., None]
    far *= F32(4.0)
    np.clip(far, F32(0), F32(1), out=far)  # 1 = a quarter metre or more behind the pelvis
    # One uniform draw per joint decides dropping and, for kept joints, the confidence's own noise.
    draw = rng.random(u.shape, dtype=F32)
    conf = draw * F32(0.12)
    conf += F32(0.95 - 0.06)
    conf -= conf_loss
    conf -= F32(0.2) * far
    np.clip(conf, F32(0.05), F32(1.0), out=conf)
    out = np.stack([u, v, conf], axis=-1)
    # Left/right swaps (legs, arms), most frequent in side views where the limbs overlap.
    side_view = np.abs(np.sin(np.deg2rad(walks.yaw))).astype(F32)
    p_swap = (F32(cfg.swap_rate) * level * (F32(0.3) + side_view))[:, None]
    legs = rng.random((n, T), dtype=F32) < p_swap
    arms = rng.random((n, T), dtype=F32) < p_swap * F32(0.5)
    out[legs] = out[legs][:, _LEG_SWAP]
    out[arms] = out[arms][:, _ARM_SWAP]
    # Dropped joints: (0, 0, 0) like OpenPose-style output; far-side and coat-covered wrists drop more.
    base = F32(cfg.drop_rate) * level[:, None, None] * _DROP_SCALE[None, None]  # [N, 1, 17]
    p_drop = far * (F32(2) * base)
    p_drop += base
    p_drop[:, :, _WRISTS] += F32(0.12) * coat[:, None, None]
    out[draw < p_drop] = 0.0
    return out


def render(cfg: WorldConfig, identities: dict[str, np.ndarray], walks: Walks, seed: int | np.random.SeedSequence,
           space: str = "image", threads: int = 2) -> np.ndarray:
    """Render ``walks`` of ``identities`` to float32 [N, frames, 17, 3].

    ``space="image"``: COCO-17 (x, y, confidence) in pixels, y down, with pose-estimator noise.
    ``space="world"``: clean 3D joints in metres (x forward along the walk, y left, z up; confidence
    not included: the last axis is (x, y, z)), used by the realism checks.
    Deterministic by ``seed`` (an int or a SeedSequence); ``threads`` only changes speed.
    """
    if space not in ("image", "world"):
        raise GaitforecastError(f"render: space must be 'image' or 'world', got {space!r}")
    n_ids = len(identities["height"])
    if len(walks) and (walks.identity.min() < 0 or walks.identity.max() >= n_ids):
        raise GaitforecastError(f"render: walk identities must index the {n_ids} identities given")
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    starts = list(range(0, len(walks), BLOCK))
    seqs = root.spawn(len(starts))
    out = np.empty((len(walks), cfg.frames, NUM_COCO, 3), F32)

    def job(i: int) -> None:
        sl = slice(starts[i], starts[i] + BLOCK)
        out[sl] = _render_block(cfg, identities, walks.take(sl), seqs[i], space)

    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(job, range(len(starts))))
    else:
        for i in range(len(starts)):
            job(i)
    return out


def random_walks(identity: np.ndarray, rng: np.random.Generator, yaw_range: tuple[float, float] = (0, 360),
                 pitch_max: float = 30.0, noise: tuple[float, float] = (0.6, 2.0),
                 p_bag: float = 0.15, p_coat: float = 0.15, p_phone: float = 0.1) -> Walks:
    """In-the-wild covariates for the given identities: any view, pitch, distance, speed, bag/coat/phone."""
    n = len(identity)
    lo, hi = np.log(noise[0]), np.log(noise[1])
    return Walks(
        identity=np.asarray(identity, np.int64),
        yaw=rng.uniform(*yaw_range, n).astype(F32),
        pitch=(pitch_max * rng.random(n) ** 1.5).astype(F32),
        distance=rng.uniform(4.0, 12.0, n).astype(F32),
        speed=np.exp(rng.normal(0, 0.12, n)).astype(F32),
        bag=(rng.random(n) < p_bag).astype(F32),
        coat=(rng.random(n) < p_coat).astype(F32),
        phone=(rng.random(n) < p_phone).astype(F32),
        noise=np.exp(rng.uniform(lo, hi, n)).astype(F32),
    )


def track_walks(identity: np.ndarray, rng: np.random.Generator, turn_rate: float = 45.0,
                approach_rate: float = 0.15) -> Walks:
    """:func:`random_walks` whose view changes along the track: each track turns at a yaw rate uniform in
    [-turn_rate, turn_rate] deg/s and its distance changes by a log-rate uniform in [-approach_rate,
    approach_rate] per second. With both 0 these are :func:`random_walks` (the extra draws come after)."""
    walks = random_walks(identity, rng)
    n = len(walks)
    walks.yaw_rate = rng.uniform(-turn_rate, turn_rate, n).astype(F32)
    walks.distance_rate = rng.uniform(-approach_rate, approach_rate, n).astype(F32)
    return walks


__all__ = ["BLOCK", "WorldConfig", "Walks", "render", "random_walks", "track_walks", "sample_identities"]

"""The four zero-shot evaluation suites of the synthetic world, and :func:`evaluate` for any Suite.

Use :func:`build_suite` to get a suite (cached on disk when ``cache_dir`` is given) and :func:`evaluate` to
score one embedding per sequence. The suites are modelled on real benchmarks but are synthetic and named so:

- ``synth-casiab``: CASIA-B-like. 124 ids x (NM 6, BG 2, CL 2) x 11 views 0..180 step 18. All 124 ids are
  test ids because evaluation is zero-shot (real CASIA-B tests on ids 75-124 only). Gallery NM 1-4, probes
  NM 5-6 / BG / CL, rank-1 per view pair with identical views excluded -> rank1_nm, rank1_bg, rank1_cl, rank1_mean.
- ``synth-grew``: GREW-like in the wild. 2,000 ids x 4 walks (2 gallery, 2 probe), random yaw 0-360, pitch
  0-30, heavy estimator noise -> rank1, rank5 (real GREW tests 6,000 ids; scaled down for CPU evaluation).
- ``synth-gait3d``: Gait3D-like. 1,000 ids x 6 walks, one probe per id, the rest gallery, steep cameras
  -> rank1, rank5, mAP, mINP.
- ``synth-psymo``: PsyMo-like. 312 ids x 7 walks (nm1 gallery; nm2, bg, cl, slow, fast, phone probes)
  x 6 views, cross-view -> rank1 and rank1_<walk>.

``size="quick"`` gives a much smaller version of each for fast sweeps and tests (casiab 40 ids x 6 views
0..180 step 36; grew 200 ids; gait3d 200 ids; psymo 60 ids x 4 views); ``size="sweep"`` about halves that
again for the evaluations of a 2-core sweep (casiab 40 ids x 4 views step 60; grew/gait3d 100 ids; psymo 20 ids).

Room to learn: the trivial raw-joint nearest neighbour (:func:`baseline_embeddings`) scores rank1_mean ~0.14 on
full synth-casiab (chance 0.008; ~0.95 when gallery and probe share the view), and a linear map fitted on
pool identities (LDA) already lifts quick synth-casiab from ~0.15 to ~0.44.
Identities come from a seed stream per suite, separate from the pretraining pool's, so no suite identity
is ever seen in pretraining.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from gaitforecast.data import protocols
from gaitforecast.data.world import F32, Walks, WorldConfig, random_walks, render, sample_identities
from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import normalize

SIZE_NAMES: tuple[str, ...] = ("full", "quick", "sweep")
CASIAB_WALKS = [("nm", i) for i in range(1, 7)] + [("bg", 1), ("bg", 2), ("cl", 1), ("cl", 2)]
PSYMO_WALKS = ("nm1", "nm2", "bg", "cl", "slow", "fast", "phone")


@dataclass
class Suite:
    """An evaluation set: sequences [M, T, 17, 3] float32, meta (column ``id`` + protocol columns), protocol."""

    name: str
    sequences: np.ndarray
    meta: pd.DataFrame
    protocol: str  # "casiab" | "grew" | "gait3d" | "psymo"

    def __len__(self) -> int:
        return len(self.sequences)


def _casiab(n_ids: int, view_step: int, rng: np.random.Generator) -> tuple[Walks, pd.DataFrame]:
    views = np.arange(0, 181, view_step)
    rows = [(i, t, w, v) for i in range(n_ids) for t, w in CASIAB_WALKS for v in views]
    meta = pd.DataFrame(rows, columns=["id", "type", "walk", "view"])
    n = len(meta)
    walks = Walks(identity=meta["id"].to_numpy(), yaw=meta["view"].to_numpy(F32),
                  pitch=rng.normal(4, 1, n).astype(F32), distance=rng.normal(5, 0.3, n).astype(F32),
                  speed=np.exp(rng.normal(0, 0.05, n)).astype(F32), bag=(meta["type"] == "bg").to_numpy(F32),
                  coat=(meta["type"] == "cl").to_numpy(F32), noise=np.exp(rng.normal(0, 0.15, n)).astype(F32))
    return walks, meta


def _wild(n_ids: int, per_id: int, rng: np.random.Generator, pitch_max: float, noise: tuple[float, float],
          protocol: str) -> tuple[Walks, pd.DataFrame]:
    ids = np.repeat(np.arange(n_ids), per_id)
    k = np.tile(np.arange(per_id), n_ids)
    walks = random_walks(ids, rng, pitch_max=pitch_max, noise=noise)
    if protocol == "grew":
        role = np.where(k < per_id // 2, "gallery", "probe")
    else:  # gait3d: one probe per id
        role = np.where(k == 0, "probe", "gallery")
    meta = pd.DataFrame({"id": ids, "walk": k + 1, "role": role, "view": np.round(walks.yaw).astype(int),
                         "pitch": np.round(walks.pitch, 1), "bag": walks.bag.astype(int),
                         "coat": walks.coat.astype(int), "phone": walks.phone.astype(int)})
    return walks, meta


def _psymo(n_ids: int, view_step: int, rng: np.random.Generator) -> tuple[Walks, pd.DataFrame]:
    views = np.arange(0, 181, view_step)
    rows = [(i, w, v) for i in range(n_ids) for w in PSYMO_WALKS for v in views]
    meta = pd.DataFrame(rows, columns=["id", "variation", "view"])
    n, var = len(meta), meta["variation"].to_numpy()
    speed = np.where(var == "slow", 0.75, np.where(var == "fast", 1.3, 1.0)) * np.exp(rng.normal(0, 0.04, n))
    walks = Walks(identity=meta["id"].to_numpy(), yaw=meta["view"].to_numpy(F32),
                  pitch=rng.normal(10, 2, n).astype(F32), distance=rng.normal(6, 0.5, n).astype(F32),
                  speed=speed.astype(F32), bag=(var == "bg").astype(F32), coat=(var == "cl").astype(F32),
                  phone=(var == "phone").astype(F32), noise=np.exp(rng.normal(0.1, 0.15, n)).astype(F32))
    return walks, meta


@dataclass(frozen=True)
class SuiteSpec:
    """One evaluation suite: its generator (identities and walks -> sequences and protocol columns), sizes
    (identities, views or walks per identity) and protocol. Adding a suite is one entry in :data:`SUITES`."""

    name: str
    namespace: int  # seeds the suite's own random stream (distinct from the pool and the other suites)
    sizes: dict[str, tuple[int, int]]  # size name -> (identities, views or walks per identity)
    protocol: str  # a key of PROTOCOLS
    make: Callable[[int, int, np.random.Generator], tuple[Walks, pd.DataFrame]]


SUITES: dict[str, SuiteSpec] = {spec.name: spec for spec in (
    SuiteSpec("synth-casiab", 11, {"full": (124, 18), "quick": (40, 36), "sweep": (40, 60)}, "casiab", _casiab),
    SuiteSpec("synth-grew", 12, {"full": (2000, 4), "quick": (200, 4), "sweep": (100, 4)}, "grew",
              partial(_wild, pitch_max=30.0, noise=(1.0, 2.5), protocol="grew")),
    SuiteSpec("synth-gait3d", 13, {"full": (1000, 6), "quick": (200, 6), "sweep": (100, 6)}, "gait3d",
              partial(_wild, pitch_max=45.0, noise=(0.8, 2.0), protocol="gait3d")),
    SuiteSpec("synth-psymo", 14, {"full": (312, 36), "quick": (60, 60), "sweep": (20, 60)}, "psymo", _psymo),
)}
SUITE_NAMES: tuple[str, ...] = tuple(SUITES)
NAMESPACE = {"pool": 1, **{name: spec.namespace for name, spec in SUITES.items()}}
SIZES = {name: spec.sizes for name, spec in SUITES.items()}


def _generate(name: str, seed: int, size: str, config: WorldConfig) -> Suite:
    spec = SUITES[name]
    n_ids, k = spec.sizes[size]
    root = np.random.SeedSequence([seed, spec.namespace])
    id_seq, cov_seq, render_seq = root.spawn(3)
    identities = sample_identities(n_ids, np.random.default_rng(id_seq), config.style_scale)
    walks, meta = spec.make(n_ids, k, np.random.default_rng(cov_seq))
    return Suite(name, render(config, identities, walks, render_seq), meta, spec.protocol)


def build_suite(name: str, cache_dir: Path | None = None, seed: int = 0, size: str = "full",
                config: WorldConfig | None = None) -> Suite:
    """Build (or load from ``cache_dir``) one of :data:`SUITE_NAMES` at ``size`` "full", "quick" or "sweep".

    The cache folder is keyed by name, size, seed and the generator's config hash; a missing or
    mismatched cache is regenerated. Cached sequences are memory-mapped read-only.
    """
    if name not in SUITE_NAMES:
        raise GaitforecastError(f"unknown suite {name!r}; choose one of {', '.join(SUITE_NAMES)}")
    if size not in SIZE_NAMES:
        raise GaitforecastError(f"suite size must be one of {', '.join(SIZE_NAMES)}, got {size!r}")
    config = config or WorldConfig()
    if cache_dir is None:
        return _generate(name, seed, size, config)
    key = {"name": name, "size": size, "seed": seed, "config_hash": config.config_hash()}
    folder = Path(cache_dir) / "suites" / f"{name}-{size}-s{seed}-{key['config_hash']}"
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if all(manifest.get(k) == v for k, v in key.items()):
            seqs = np.load(folder / "sequences.npy", mmap_mode="r")
            meta = pd.read_csv(folder / "meta.csv", keep_default_na=False)
            if len(seqs) == len(meta) == manifest["n"]:
                return Suite(name, seqs, meta, manifest["protocol"])
    except (OSError, ValueError, KeyError):
        pass  # missing or damaged cache: regenerate below
    suite = _generate(name, seed, size, config)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.save(tmp / "sequences.npy", suite.sequences)
    suite.meta.to_csv(tmp / "meta.csv", index=False)
    (tmp / "manifest.json").write_text(json.dumps({**key, "n": len(suite), "protocol": suite.protocol,
                                                   "config": config.to_dict()}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return suite


PROTOCOLS: dict[str, Callable[[np.ndarray, pd.DataFrame], dict[str, float]]] = {
    "casiab": lambda emb, m: protocols.casiab_metrics(emb, m["id"].to_numpy(), m["type"].to_numpy(),
                                                      m["walk"].to_numpy(), m["view"].to_numpy()),
    "grew": lambda emb, m: protocols.gallery_probe_metrics(emb, m["id"].to_numpy(), (m["role"] == "probe").to_numpy(),
                                                           (1, 5)),
    "gait3d": lambda emb, m: protocols.gallery_probe_metrics(emb, m["id"].to_numpy(),
                                                             (m["role"] == "probe").to_numpy(), (1, 5), with_map=True),
    "psymo": lambda emb, m: protocols.covariate_metrics(emb, m["id"].to_numpy(), m["view"].to_numpy(),
                                                        m["variation"].to_numpy()),
}


def evaluate(suite: Suite, embeddings: np.ndarray) -> dict[str, float]:
    """Score one embedding per sequence of ``suite`` with its protocol (Euclidean distance).

    Returns metric names without the suite prefix (casiab: rank1_nm/bg/cl/mean; grew: rank1, rank5;
    gait3d: rank1, rank5, mAP, mINP; psymo: rank1 + rank1_<walk>), values in [0, 1].
    """
    emb = protocols.check_embeddings(embeddings, len(suite))
    if suite.protocol not in PROTOCOLS:
        raise GaitforecastError(f"suite {suite.name!r} has unknown protocol {suite.protocol!r}")
    return PROTOCOLS[suite.protocol](emb, suite.meta)


def baseline_embeddings(sequences: np.ndarray) -> np.ndarray:
    """The trivial raw-joint baseline: per-joint mean and std over time of normalised (x, y) -> [M, 68].

    Phase-free (a time average), so it measures how much identity the raw poses carry without learning.
    """
    out = []
    for start in range(0, len(sequences), 2048):
        x = normalize(np.asarray(sequences[start:start + 2048]))
        conf = x[..., 2:3] > 0
        cnt = np.maximum(conf.sum(axis=1), 1)
        mean = (x[..., :2] * conf).sum(axis=1) / cnt
        var = (((x[..., :2] - mean[:, None]) ** 2) * conf).sum(axis=1) / cnt
        out.append(np.concatenate([mean.reshape(len(x), -1), np.sqrt(var).reshape(len(x), -1)], axis=1))
    return np.concatenate(out).astype(np.float32)

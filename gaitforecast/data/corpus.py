"""The unlabeled pretraining pool: many synthetic people, several in-the-wild walks each, cached on disk.

Use :meth:`PretrainPool.open` to get (or generate once) a pool, ``pool.sequences`` for the raw memory-mapped
array [N, frames, 17, 3] and ``pool.subset(fraction)`` for nested data fractions (a prefix of the pool, so
``subset(0.1)`` is contained in ``subset(0.5)``; fractions from 0.01 to 1 span two decades).

Sequence ``i`` is a walk of identity ``i % n_identities`` (``n_identities = ceil(N / WALKS_PER_IDENTITY)``),
so a small prefix holds one walk each of many people and larger prefixes add more walks of the same people.

Walks are *tracks*, as a tracker cuts them from street footage: with ``turn_rate > 0`` the walker's yaw to the
camera turns along the track (uniform in +-turn_rate deg/s) and the distance drifts (``approach_rate``, log per
second), so two windows of one track see the same person from different angles. Every track is also rendered
by a second camera (``pool.second``: the same walk, same body and noise draws, from a yaw drawn afresh), for
multi-camera positive pairs.

Identities come from the pool's own seed stream, disjoint from every evaluation suite's. Their ids are kept
in ``identity.npy`` for diagnostics only; training never sees them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from gaitforecast.data.suites import NAMESPACE
from gaitforecast.data.world import WorldConfig, render, sample_identities, track_walks
from gaitforecast.errors import GaitforecastError

WALKS_PER_IDENTITY = 4
ID_BLOCK = 4096  # identities per seed stream
CHUNK = 8192  # sequences generated (and seeded) together; bounds memory to ~100 MB


def _identity_block(seed: int, block: int, style_scale: float) -> dict[str, np.ndarray]:
    ss = np.random.SeedSequence([seed, NAMESPACE["pool"], 0, block])
    return sample_identities(ID_BLOCK, np.random.default_rng(ss), style_scale)


def _generate_chunk(cfg: WorldConfig, seed: int, chunk: int, n: int, n_ids: int, turn_rate: float,
                    approach_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera-1 tracks, camera-2 tracks, identities) of one chunk."""
    idx = np.arange(chunk * CHUNK, min(n, (chunk + 1) * CHUNK))
    identity = idx % n_ids
    blocks = np.unique(identity // ID_BLOCK)
    tables = [_identity_block(seed, int(b), cfg.style_scale) for b in blocks]
    table = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    local = np.searchsorted(blocks, identity // ID_BLOCK) * ID_BLOCK + identity % ID_BLOCK
    rng = np.random.default_rng(np.random.SeedSequence([seed, NAMESPACE["pool"], 1, chunk]))
    walks = track_walks(local, rng, turn_rate, approach_rate)
    render_seed = [seed, NAMESPACE["pool"], 2, chunk]
    seqs = render(cfg, table, walks, np.random.SeedSequence(render_seed))
    # The second camera: same seed stream (so the same body motion and estimator draws), another yaw.
    walks.yaw = rng.uniform(0, 360, len(walks)).astype(np.float32)
    second = render(cfg, table, walks, np.random.SeedSequence(render_seed))
    return seqs, second, identity


@dataclass
class PretrainPool:
    """An opened pool: ``sequences`` (read-only memmap), ``second`` (the same tracks seen by a second camera),
    ``identity`` (diagnostics), ``manifest``, ``path``."""

    path: Path
    sequences: np.ndarray
    second: np.ndarray
    identity: np.ndarray
    manifest: dict

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, fraction: float) -> np.ndarray:
        """Indices of the first ``round(fraction * N)`` sequences (at least 1): nested across fractions."""
        if not 0.0 < fraction <= 1.0:
            raise GaitforecastError(f"pool fraction must be in (0, 1], got {fraction}")
        return np.arange(max(1, int(round(fraction * len(self)))))

    @classmethod
    def open(cls, cache_dir: Path, n_sequences: int, frames: int = 60, seed: int = 0,
             config: WorldConfig | None = None, turn_rate: float = 0.0, approach_rate: float = 0.0,
             progress: Callable[[int, int], None] | None = None) -> "PretrainPool":
        """Open the pool cached under ``cache_dir``, generating it first if missing or stale.

        The cache folder is keyed by (n_sequences, frames, seed, turn and approach rates, generator config
        hash); its manifest must match or the pool is regenerated. Generation runs in chunks of 8,192
        sequences written straight to the memmap, under a file lock so that parallel workers generate it once.
        ``progress(done, total)`` is called after each chunk if given. ``turn_rate`` (deg/s) and
        ``approach_rate`` (log distance per second) set how much the view changes along a track (0 = straight
        walks at a fixed view).
        """
        if n_sequences < 1:
            raise GaitforecastError(f"n_sequences must be >= 1, got {n_sequences}")
        if not (0 <= turn_rate <= 720 and 0 <= approach_rate <= 2):
            raise GaitforecastError(f"turn_rate must be in [0, 720] deg/s and approach_rate in [0, 2], "
                                    f"got {turn_rate} and {approach_rate}")
        config = config or WorldConfig(frames=frames)
        if config.frames != frames:
            raise GaitforecastError(f"config.frames={config.frames} disagrees with frames={frames}")
        key = {"kind": "pretrain-pool", "n_sequences": int(n_sequences), "frames": int(frames), "seed": int(seed),
               "config_hash": config.config_hash(), "turn_rate": float(turn_rate),
               "approach_rate": float(approach_rate), "cameras": 2}
        tag = f"t{turn_rate:g}-a{approach_rate:g}"
        folder = Path(cache_dir) / "pool" / f"pool-n{n_sequences}-f{frames}-s{seed}-{tag}-{key['config_hash']}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            pool = cls._load(folder, key)
            if pool is None:
                cls._build(folder, key, config, progress)
                pool = cls._load(folder, key)
        if pool is None:
            raise GaitforecastError(f"could not read the pool just written at {folder}; check the disk")
        return pool

    @classmethod
    def _load(cls, folder: Path, key: dict) -> "PretrainPool | None":
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            if not manifest.get("complete") or any(manifest.get(k) != v for k, v in key.items()):
                return None
            seqs = np.load(folder / "sequences.npy", mmap_mode="r")
            second = np.load(folder / "second.npy", mmap_mode="r")
            identity = np.load(folder / "identity.npy")
        except (OSError, ValueError):
            return None
        shape = (key["n_sequences"], key["frames"], 17, 3)
        if seqs.shape != shape or second.shape != shape or len(identity) != len(seqs):
            return None
        return cls(folder, seqs, second, identity, manifest)

    @classmethod
    def _build(cls, folder: Path, key: dict, config: WorldConfig,
               progress: Callable[[int, int], None] | None) -> None:
        n, seed = key["n_sequences"], key["seed"]
        n_ids = math.ceil(n / WALKS_PER_IDENTITY)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shape = (n, key["frames"], 17, 3)
        seqs = np.lib.format.open_memmap(tmp / "sequences.npy", mode="w+", dtype=np.float32, shape=shape)
        second = np.lib.format.open_memmap(tmp / "second.npy", mode="w+", dtype=np.float32, shape=shape)
        identity = np.empty(n, np.int64)
        n_chunks = math.ceil(n / CHUNK)
        for c in range(n_chunks):
            block, block2, ids = _generate_chunk(config, seed, c, n, n_ids, key["turn_rate"], key["approach_rate"])
            seqs[c * CHUNK:c * CHUNK + len(block)] = block
            second[c * CHUNK:c * CHUNK + len(block)] = block2
            identity[c * CHUNK:c * CHUNK + len(block)] = ids
            if progress is not None:
                progress(min(n, (c + 1) * CHUNK), n)
        seqs.flush()
        second.flush()
        del seqs, second
        np.save(tmp / "identity.npy", identity)
        manifest = {**key, "complete": True, "n_identities": n_ids, "walks_per_identity": WALKS_PER_IDENTITY,
                    "config": config.to_dict(), "identity_namespace": "pool",
                    "layout": "sequences.npy (camera 1) and second.npy (camera 2) float32 [N, frames, 17, 3] COCO-17 "
                              "(x, y, confidence), pixels, y down"}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

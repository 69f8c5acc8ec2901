"""Data a run needs (pool and suites, normalised and cached per process) and the frozen-encoder evaluation.

Use :func:`load_pool` / :func:`load_suites` to get tensors ready for training and evaluation (the on-disk caches of
the data package make repeated runs cheap; this module adds an in-process cache so a worker that trains several
runs normalises the data once), :func:`zero_shot` to score a frozen encoder on every suite, and
:func:`heldout_loss` for the SSL loss on the fixed held-out slice of the pool with fixed views.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from gaitforecast.data.augment import AugmentConfig, center_window, coco_to_gaitpt, two_views
from gaitforecast.skeleton import normalize
from gaitforecast.train.config import DataSpec
from gaitforecast.train.objective import ssl_loss

HELDOUT_VIEW_SEED = 20_240_917  # fixed views for the held-out loss: comparable across evals and runs
HELDOUT_BATCH = 256  # negatives per held-out batch; fixed so the value does not depend on the run's batch size

_POOLS: dict[tuple, "PoolData"] = {}
_SUITES: dict[tuple, list["SuiteData"]] = {}


@dataclass
class PoolData:
    """The whole pretraining pool, normalised COCO-17 [N, T, 17, 3], plus the held-out and training orders.

    ``second`` [N, T, 17, 3] is the other member of each sequence's positive pair: the same tensor as
    ``sequences`` for track pairs, the same walks from a second camera for multi-camera pairs.
    """

    sequences: torch.Tensor
    heldout: np.ndarray  # pool indices never trained on
    order: np.ndarray  # the remaining indices in the pool's nested-subset order
    manifest: dict[str, Any]
    second: torch.Tensor | None = None

    def train_indices(self, unique: int) -> np.ndarray:
        """The first ``unique`` training indices (nested: a smaller fraction is a prefix of a larger one)."""
        return self.order[:unique]

    def pair(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two sources of the positive pairs of pool rows ``idx``: (this track, its partner)."""
        first = self.sequences[idx]
        return first, (first if self.second is None else self.second[idx])


@dataclass
class SuiteData:
    """One evaluation suite as model input [M, frames, 18, 2] with its raw suite object (for the protocol)."""

    name: str
    inputs: torch.Tensor
    suite: Any


def _data_fields(data: DataSpec | Mapping[str, Any]) -> dict[str, Any]:
    """A run's data section as a dict of every DataSpec field (defaults filled in for a partial mapping)."""
    return asdict(data) if isinstance(data, DataSpec) else asdict(DataSpec(**data))


def load_pool(cache_dir: Path, data: DataSpec | Mapping[str, Any]) -> PoolData:
    """Open (generating on first use) the pool described by a run's ``data`` config, normalised, cached."""
    from gaitforecast.data.corpus import PretrainPool

    data = _data_fields(data)
    real = data.get("pool_path", "")
    pairs = data.get("pairs", "track")
    turn, approach = float(data.get("turn_rate", 0.0)), float(data.get("approach_rate", 0.0))
    key = (str(cache_dir), data["pool_sequences"], data["pool_frames"], data["world_seed"], data["heldout_sequences"],
           real, pairs, turn, approach)
    if key not in _POOLS:
        second = None
        if real:
            raw, partner_raw, manifest = _real_pool(Path(real), data)
            if partner_raw is not None:
                second = torch.from_numpy(normalize(partner_raw))
        else:
            pool = PretrainPool.open(Path(cache_dir), n_sequences=data["pool_sequences"], frames=data["pool_frames"],
                                     seed=data["world_seed"], turn_rate=turn, approach_rate=approach)
            raw, manifest = np.asarray(pool.sequences), dict(getattr(pool, "manifest", {}) or {})
            if pairs == "multicam":
                second = torch.from_numpy(normalize(np.asarray(pool.second)))
        ordered = np.arange(data["pool_sequences"], dtype=np.int64)  # both pools are nested prefixes
        heldout = ordered[-data["heldout_sequences"]:]
        order = ordered[: len(ordered) - data["heldout_sequences"]]
        seqs = torch.from_numpy(normalize(raw))
        _POOLS[key] = PoolData(seqs, heldout, order, manifest, second)
    return _POOLS[key]


def multicam_partners(meta: Any) -> np.ndarray:
    """For each real sequence, the row of the same walk (same ``id`` and ``type``) seen from the next other
    ``view`` (cyclically), or the row itself where the walk has a single view."""
    partner = np.arange(len(meta))
    if not {"id", "type", "view"} <= set(meta.columns):
        return partner
    for _, group in meta.groupby(["id", "type"], sort=False):
        rows = group.sort_values("view")
        views = rows["view"].astype(str).to_numpy()
        idx = rows.index.to_numpy()
        for k in range(len(idx)):
            for step in range(1, len(idx)):
                other = (k + step) % len(idx)
                if views[other] != views[k]:
                    partner[idx[k]] = idx[other]
                    break
    return partner


def _real_pool(path: Path, data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """``pool_sequences`` usable real sequences, in a fixed shuffled order (seeded by world_seed), and for
    multi-camera pairs each one's partner view (None for track pairs)."""
    from gaitforecast.data.formats import read_poses
    from gaitforecast.errors import GaitforecastError

    loaded = read_poses(path, frames=data["pool_frames"])
    n = len(loaded.sequences)
    if n < data["pool_sequences"]:
        raise GaitforecastError(
            f"data.pool_path {path} holds {n} usable sequences ({len(loaded.skipped)} skipped), fewer than "
            f"data.pool_sequences = {data['pool_sequences']}; lower pool_sequences or see `gaitforecast data-check`"
        )
    pick = np.sort(np.random.default_rng(data["world_seed"]).permutation(n)[: data["pool_sequences"]])
    manifest: dict[str, Any] = {"source": str(path), "usable": n, "skipped": len(loaded.skipped)}
    if data.get("pairs", "track") == "multicam":
        partner = multicam_partners(loaded.meta.reset_index(drop=True))[pick]
        paired = int(np.sum(partner != pick))
        if paired == 0:
            raise GaitforecastError(
                f"data.pairs = 'multicam' but no walk in {path} has a second view (the same <id>/<type> under "
                "two <view> folders); use pairs = 'track'")
        manifest["multicam_paired"], manifest["multicam_unpaired"] = paired, len(pick) - paired
        return loaded.sequences[pick], loaded.sequences[partner], manifest  # partners may lie outside the pick
    return loaded.sequences[pick], None, manifest


def load_suites(cache_dir: Path, data: DataSpec | Mapping[str, Any]) -> list[SuiteData]:
    """All evaluation suites at the run's size, as normalised GaitPT-order windows of ``frames`` frames."""
    from gaitforecast.data.suites import SUITE_NAMES, build_suite

    data = _data_fields(data)
    key = (str(cache_dir), data["suite_size"], data["world_seed"], data["frames"], data.get("casia_b_path", ""))
    if key not in _SUITES:
        out = []
        for name in SUITE_NAMES:
            suite = build_suite(name, cache_dir=Path(cache_dir), seed=data["world_seed"], size=data["suite_size"])
            seqs = torch.from_numpy(normalize(np.asarray(suite.sequences)))
            out.append(SuiteData(name, coco_to_gaitpt(center_window(seqs, data["frames"])).contiguous(), suite))
        if data.get("casia_b_path"):
            from gaitforecast.data.formats import casia_b_suite

            suite, _ = casia_b_suite(Path(data["casia_b_path"]), frames=max(data["pool_frames"], data["frames"]))
            seqs = torch.from_numpy(normalize(np.asarray(suite.sequences)))
            out.append(SuiteData(suite.name, coco_to_gaitpt(center_window(seqs, data["frames"])).contiguous(), suite))
        _SUITES[key] = out
    return _SUITES[key]


def prepare_data(cache_dir: Path, data: DataSpec | Mapping[str, Any]) -> None:
    """Build the on-disk caches (pool and suites) once, e.g. in the sweep driver before workers start."""
    load_pool(cache_dir, data)
    load_suites(cache_dir, data)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def embed_all(model: torch.nn.Module, inputs: torch.Tensor, device: torch.device, dtype: torch.dtype | None,
              batch: int = 1024) -> np.ndarray:
    """Frozen-encoder embeddings [M, E] (float32 numpy) in large no-grad batches.

    no_grad, not inference_mode: models may cache tensors (RoPE tables) that training later reuses.
    """
    out = []
    for start in range(0, inputs.shape[0], batch):
        x = inputs[start : start + batch].to(device, non_blocking=True)
        with _autocast(device, dtype):
            e = model.embed(x)
        out.append(e.float().cpu())
    return torch.cat(out).numpy()


def zero_shot(model: torch.nn.Module, suites: list[SuiteData], device: torch.device,
              dtype: torch.dtype | None, batch: int = 1024) -> dict[str, float]:
    """Metrics of the frozen encoder on every suite, keyed ``"{suite}.{metric}"``."""
    from gaitforecast.data.suites import evaluate

    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    try:
        for s in suites:
            emb = embed_all(model, s.inputs, device, dtype, batch)
            for name, value in evaluate(s.suite, emb).items():
                metrics[f"{s.name}.{name}"] = float(value)
    finally:
        model.train(was_training)
    return metrics


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, pool: PoolData, frames: int, augment: AugmentConfig,
                 temperature: float, koleo_weight: float, device: torch.device,
                 dtype: torch.dtype | None) -> float:
    """SSL loss on the held-out slice with the same fixed views every time (batches of HELDOUT_BATCH), with the
    run's own positive pairs (track windows or camera pairs)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(HELDOUT_VIEW_SEED)
    total, count = 0.0, 0
    try:
        idx = torch.from_numpy(pool.heldout)
        for start in range(0, len(idx), HELDOUT_BATCH):
            chunk = idx[start : start + HELDOUT_BATCH]
            if len(chunk) < 2:
                break
            first, partner = pool.pair(chunk)
            v1, v2 = two_views(first, frames, augment, gen, partner)
            with _autocast(device, dtype):
                z = model(torch.cat([v1, v2]).to(device))
            z1, z2 = z.float().chunk(2)
            total += float(ssl_loss(z1, z2, temperature, koleo_weight).total) * len(chunk)
            count += len(chunk)
    finally:
        model.train(was_training)
    return total / max(count, 1)

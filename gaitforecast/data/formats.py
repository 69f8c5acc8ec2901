"""Readers for real pose data: the OpenGait pose tree, plain .npz files, and a CASIA-B tree as a Suite.

Use :func:`read_opengait` for ``<root>/<id>/<type>/<view>/*.pkl`` (each pickle one array [T, 17, 3] of COCO-17
x, y, confidence in pixels, as in OpenGait/FastPoseGait), :func:`read_npz` for .npz files, and
:func:`casia_b_suite` to evaluate on real CASIA-B poses with ``evaluate()``.

Accepted .npz layouts (loaded with ``allow_pickle=False``):
  A. ``sequences`` [N, T, 17, 3] and ``ids`` [N]; any other 1-D array of length N (e.g. ``types``,
     ``views``, ``walks``) becomes a meta column of the same name.
  B. one array [T, 17, 3] per key, the key naming the sequence as ``<id>`` or ``<id>/<type>/<view>``.

Every sequence is checked. Bad ones (wrong shape, NaN/inf, no confidence channel, unreadable pickle, too
few frames, empty leaf folder) are skipped and listed with the reason in ``skipped`` (``on_error="skip"``,
the default) or raise a GaitforecastError naming the file (``on_error="raise"``). [T, 18, 3] arrays in
OpenPose-18 order (OU-MVLP-Pose) are converted to COCO-17; [T, 17, 2] arrays are accepted only with
``assume_confidence=True`` (confidence 1). Sequences are then cut to ``frames`` (centre window) or, when
shorter but at least ``min_frames`` long, repeated cyclically (gait is periodic) up to ``frames``.
Pickles are read with an unpickler that only rebuilds numpy arrays, so a hostile file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gaitforecast.data.suites import Suite
from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import OPENPOSE18_TO_COCO17

_SAFE_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                 ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                 ("numpy._core.multiarray", "scalar"), ("numpy", "float32"), ("numpy", "float64"),
                 ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                 ("_codecs", "encode")}
_CASIA_TYPE = re.compile(r"^(nm|bg|cl)-0?(\d+)$", re.IGNORECASE)


@dataclass
class LoadedPoses:
    """Sequences [M, frames, 17, 3] float32, meta (``id`` + labels + ``path``), skipped [(path, reason)]."""

    sequences: np.ndarray
    meta: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are accepted)")


def check_sequence(arr: object, frames: int, min_frames: int = 15, assume_confidence: bool = False) -> np.ndarray | str:
    """Validate one pose array; returns it as float32 [frames, 17, 3], or a string saying what is wrong."""
    try:
        seq = np.asarray(arr)
    except Exception as exc:  # noqa: BLE001  (arbitrary objects from user files)
        return f"not an array ({type(arr).__name__}: {exc})"
    if np.iscomplexobj(seq):
        return f"complex values (dtype {seq.dtype}); poses are real x, y, confidence"
    if not np.issubdtype(seq.dtype, np.number):
        return f"not a numeric array (dtype {seq.dtype})"
    if seq.ndim != 3:
        return f"wrong shape {tuple(seq.shape)}, expected [T, 17, 3] (x, y, confidence per COCO-17 joint)"
    if seq.shape[1] == 18:
        seq = seq[:, OPENPOSE18_TO_COCO17]
    if seq.shape[1] != 17:
        return f"wrong joint count {seq.shape[1]} in shape {tuple(seq.shape)}, expected 17 (COCO) or 18 (OpenPose)"
    if seq.shape[2] == 2:
        if not assume_confidence:
            return "missing confidence channel (shape [T, 17, 2]); pass assume_confidence=True to use confidence 1"
        seq = np.concatenate([seq, np.ones(seq.shape[:2] + (1,), seq.dtype)], axis=2)
    if seq.shape[2] != 3:
        return f"wrong shape {tuple(seq.shape)}, expected [T, 17, 3] (x, y, confidence)"
    with np.errstate(over="ignore", invalid="ignore"):
        seq = seq.astype(np.float32)  # checked after the cast: 1e300 becomes inf in float32
    if not np.isfinite(seq).all():
        return "contains NaN or inf values (or values beyond float32's range, ~3.4e38)"
    if len(seq) < min_frames:
        return f"too short: {len(seq)} frames < min_frames={min_frames}"
    return fit_length(seq, frames)


def fit_length(seq: np.ndarray, frames: int) -> np.ndarray:
    """Cut the centre ``frames`` window, or repeat a shorter sequence cyclically up to ``frames``."""
    t = len(seq)
    if t >= frames:
        start = (t - frames) // 2
        return np.ascontiguousarray(seq[start:start + frames])
    return np.ascontiguousarray(seq[np.arange(frames) % t])


def _finish(seqs: list[np.ndarray], rows: list[dict], skipped: list[tuple[str, str]], source: Path,
            frames: int) -> LoadedPoses:
    if not seqs:
        reasons = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
        raise GaitforecastError(f"no usable pose sequence in {source} ({len(skipped)} skipped: {reasons})")
    return LoadedPoses(np.stack(seqs).astype(np.float32), pd.DataFrame(rows), skipped)


def _fail(on_error: str, skipped: list, path: Path | str, reason: str) -> None:
    if on_error == "raise":
        raise GaitforecastError(f"{path}: {reason}")
    skipped.append((str(path), reason))


MAX_PKL_BYTES = 256 * 2**20  # one pose sequence; a .pkl larger than this is refused unread


def _inside(path: Path, root: Path) -> bool:
    """True when ``path``, links followed, lies inside ``root`` (links followed too)."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return top == real or top in real.parents


def _not_a_pose_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as one pose pickle (a FIFO would block, a device never ends, a huge file would
    fill memory), or None. Links are followed only to regular files."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a FIFO, device or socket); skipped unread"
    if info.st_size > MAX_PKL_BYTES:
        return f"{info.st_size:,} bytes, over the {MAX_PKL_BYTES // 2**20} MiB a pose sequence can need; skipped unread"
    return None


def read_opengait(root: Path, frames: int = 60, min_frames: int = 15, on_error: str = "skip",
                  assume_confidence: bool = False) -> LoadedPoses:
    """Read an OpenGait pose tree ``<root>/<id>/<type>/<view>/*.pkl``; meta columns id, type, view, path.

    A leaf folder with several .pkl files (several modalities) uses the first in name order and lists the
    others as skipped. Raises GaitforecastError if ``root`` is missing or holds no usable sequence.
    """
    root = Path(root)
    if on_error not in ("skip", "raise"):
        raise GaitforecastError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    if not root.is_dir():
        raise GaitforecastError(f"pose folder {root} does not exist or is not a folder")
    leaves = sorted(p for p in root.glob("*/*/*") if p.is_dir())
    if not leaves:
        raise GaitforecastError(f"{root} holds no <id>/<type>/<view>/ folders (expected the OpenGait pose layout)")
    seqs, rows, skipped = [], [], []
    for leaf in leaves:
        pkls = sorted(leaf.glob("*.pkl"))
        if not pkls:
            _fail(on_error, skipped, leaf, "empty folder: no .pkl file")
            continue
        for extra in pkls[1:]:
            skipped.append((str(extra), "extra .pkl in the same folder (another modality?); used the first"))
        why_not = _not_a_pose_file(pkls[0])
        if why_not is None and not _inside(pkls[0], root):
            why_not = "a link that leads outside the pose folder; skipped unread"
        if why_not:
            _fail(on_error, skipped, pkls[0], why_not)
            continue
        try:
            with open(pkls[0], "rb") as fh:
                arr = _NumpyOnly(io.BytesIO(fh.read(MAX_PKL_BYTES + 1))).load()
        except Exception as exc:  # noqa: BLE001  (any unreadable file becomes a reported skip)
            _fail(on_error, skipped, pkls[0], f"unreadable pickle ({type(exc).__name__}: {exc})")
            continue
        checked = check_sequence(arr, frames, min_frames, assume_confidence)
        if isinstance(checked, str):
            _fail(on_error, skipped, pkls[0], checked)
            continue
        rel = leaf.relative_to(root).parts
        seqs.append(checked)
        rows.append({"id": rel[0], "type": rel[1], "view": rel[2], "path": str(pkls[0])})
    return _finish(seqs, rows, skipped, root, frames)


MAX_NPZ_BYTES = 8 * 2**30  # a pose file larger than this (declared, uncompressed) is refused before loading


def _check_npz_sizes(path: Path) -> None:
    """Read each array's header (not its data): refuse a declared size over MAX_NPZ_BYTES, or one larger than the
    member actually stored (a header that lies about its shape), before numpy allocates it."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise GaitforecastError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    total = 0
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    shape, _, dtype = (np.lib.format.read_array_header_1_0(member) if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0(member))
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise GaitforecastError(f"{path}: array {info.filename!r} has a malformed header ({exc})") from None
            declared = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
            if declared > info.file_size:
                raise GaitforecastError(f"{path}: array {info.filename!r} declares shape {shape} ({declared:,} bytes) "
                                        f"but stores {info.file_size:,}; the file is malformed or truncated")
            total += declared
            if total > MAX_NPZ_BYTES:
                raise GaitforecastError(f"{path}: its arrays hold over {MAX_NPZ_BYTES / 2**30:.0f} GiB; split the "
                                        "poses into several files")


def read_npz(path: Path, frames: int = 60, min_frames: int = 15, on_error: str = "skip",
             assume_confidence: bool = False) -> LoadedPoses:
    """Read a .npz in layout A (``sequences`` + ``ids`` [+ 1-D label arrays]) or B (one array per key)."""
    path = Path(path)
    if on_error not in ("skip", "raise"):
        raise GaitforecastError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    _check_npz_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise GaitforecastError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if not data:
        raise GaitforecastError(f"{path}: the .npz holds no arrays")
    seqs, rows, skipped = [], [], []
    if "sequences" in data:
        if "ids" not in data:
            raise GaitforecastError(f"{path}: layout A needs an 'ids' array next to 'sequences'")
        batch, ids = data["sequences"], data["ids"]
        if ids.ndim != 1:
            raise GaitforecastError(f"{path}: 'ids' must be a 1-D array (one id per sequence), got shape {ids.shape}")
        if batch.ndim != 4 or len(ids) != len(batch):
            raise GaitforecastError(f"{path}: 'sequences' must be [N, T, 17, 3] with len(ids) == N; "
                                    f"got {batch.shape} and {len(ids)} ids")
        cols = {k: v for k, v in data.items() if k not in ("sequences", "ids") and v.ndim == 1 and len(v) == len(ids)}
        for i in range(len(batch)):
            checked = check_sequence(batch[i], frames, min_frames, assume_confidence)
            if isinstance(checked, str):
                _fail(on_error, skipped, f"{path}[{i}]", checked)
                continue
            seqs.append(checked)
            rows.append({"id": ids[i].item(), **{k: v[i].item() for k, v in cols.items()}, "path": f"{path}[{i}]"})
    else:
        for key, arr in data.items():
            checked = check_sequence(arr, frames, min_frames, assume_confidence)
            if isinstance(checked, str):
                _fail(on_error, skipped, f"{path}[{key}]", checked)
                continue
            parts = key.split("/")
            row = {"id": parts[0]}
            if len(parts) == 3:
                row.update(type=parts[1], view=parts[2])
            seqs.append(checked)
            rows.append({**row, "path": f"{path}[{key}]"})
    return _finish(seqs, rows, skipped, path, frames)


def read_poses(path: Path, frames: int = 60, min_frames: int = 15, on_error: str = "skip") -> LoadedPoses:
    """Read real poses from a .npz file or an OpenGait pose folder, whichever ``path`` is."""
    path = Path(path)
    if not path.exists():
        raise GaitforecastError(f"{path} does not exist; give an OpenGait pose folder or a .npz file")
    if path.is_file():
        return read_npz(path, frames=frames, min_frames=min_frames, on_error=on_error)
    return read_opengait(path, frames=frames, min_frames=min_frames, on_error=on_error)


def casia_b_suite(root: Path, frames: int = 60, min_frames: int = 15, on_error: str = "skip",
                  assume_confidence: bool = False) -> tuple[Suite, list[tuple[str, str]]]:
    """A CASIA-B pose tree (types nm-01..06, bg-01..02, cl-01..02; views 000..180) as the Suite "casia-b".

    ``evaluate(suite, embeddings)`` then runs the CASIA-B protocol (gallery NM 1-4; probes NM 5-6, BG, CL;
    identical views excluded). Folders whose type or view does not parse are skipped with the reason.
    Evaluate on test ids only (075-124 in the standard split) by loading a tree that holds just those.
    """
    loaded = read_opengait(root, frames, min_frames, on_error, assume_confidence)
    skipped, keep, types, walks, views = list(loaded.skipped), [], [], [], []
    for i, row in loaded.meta.iterrows():
        m = _CASIA_TYPE.match(str(row["type"]))
        view = str(row["view"])
        if m is None or not view.isdigit():
            _fail(on_error, skipped, row["path"], f"not a CASIA-B walk: type {row['type']!r} "
                  f"(want nm-01..06, bg-01..02, cl-01..02) or view {view!r} (want 000..180)")
            continue
        keep.append(i)
        types.append(m.group(1).lower())
        walks.append(int(m.group(2)))
        views.append(int(view))
    if not keep:
        raise GaitforecastError(f"{root}: no sequence in CASIA-B layout (<id>/nm-01/090/*.pkl)")
    meta = loaded.meta.iloc[keep].reset_index(drop=True).assign(type=types, walk=walks, view=views)
    meta["id"] = meta["id"].astype(str)
    return Suite("casia-b", loaded.sequences[keep], meta, "casiab"), skipped

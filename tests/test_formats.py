"""Real-data readers on small fixture trees: OpenGait pkl layout, .npz layouts, CASIA-B suite, bad input."""

import os
import pickle

import numpy as np
import pytest

from gaitforecast.data.formats import casia_b_suite, fit_length, read_npz, read_opengait
from gaitforecast.data.suites import baseline_embeddings, build_suite, evaluate
from gaitforecast.errors import GaitforecastError
from gaitforecast.skeleton import OPENPOSE18_TO_COCO17


def _seq(t: int = 70, seed: int = 0, joints: int = 17, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    seq = rng.uniform(10, 300, (t, joints, channels)).astype(np.float32)
    if channels == 3:
        seq[..., 2] = rng.uniform(0.2, 1.0, (t, joints))
    return seq


def _put(root, rel: str, obj, raw: bytes | None = None) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw if raw is not None else pickle.dumps(obj))
    return str(path)


def test_reads_opengait_tree_and_fits_length(tmp_path):
    a, b = _seq(70, 1), _seq(40, 2)
    _put(tmp_path, "001/nm-01/000/000.pkl", a)
    _put(tmp_path, "002/bg-02/090/090.pkl", b)
    out = read_opengait(tmp_path, frames=60)
    assert out.sequences.shape == (2, 60, 17, 3) and out.skipped == []
    assert list(out.meta["id"]) == ["001", "002"] and list(out.meta["type"]) == ["nm-01", "bg-02"]
    assert list(out.meta["view"]) == ["000", "090"]
    np.testing.assert_array_equal(out.sequences[0], a[5:65])  # centre window
    np.testing.assert_array_equal(out.sequences[1][40:], b[:20])  # cyclic repeat


def test_every_bad_input_is_skipped_with_a_reason(tmp_path):
    _put(tmp_path, "001/nm-01/000/ok.pkl", _seq())
    bad = {
        "001/nm-01/018/x.pkl": (_seq()[:, :, 0], "wrong shape"),
        "001/nm-01/036/x.pkl": (np.where(np.eye(17, 3)[None] > 0, np.nan, _seq(60)), "NaN"),
        "001/nm-01/054/x.pkl": (_seq(channels=2), "missing confidence channel"),
        "001/nm-01/072/x.pkl": (_seq(5), "too short"),
        "001/nm-01/090/x.pkl": (_seq(joints=25), "wrong joint count"),
        "001/nm-01/108/x.pkl": ({"pose": 1}, "not a numeric array"),
    }
    for rel, (obj, _) in bad.items():
        _put(tmp_path, rel, obj)
    _put(tmp_path, "001/nm-01/126/x.pkl", None, raw=b"\x80\x04garbage")
    _put(tmp_path, "001/nm-01/144/x.pkl", None, raw=pickle.dumps(os.system))  # code, not data
    (tmp_path / "001/nm-01/162").mkdir()
    out = read_opengait(tmp_path)
    assert len(out.sequences) == 1 and len(out.skipped) == len(bad) + 3
    reasons = dict(out.skipped)
    for rel, (_, why) in bad.items():
        assert why in reasons[str(tmp_path / rel)]
    assert "unreadable pickle" in reasons[str(tmp_path / "001/nm-01/126/x.pkl")]
    assert "refusing" in reasons[str(tmp_path / "001/nm-01/144/x.pkl")]
    assert "empty folder" in reasons[str(tmp_path / "001/nm-01/162")]
    with pytest.raises(GaitforecastError, match=r"018/x\.pkl: wrong shape"):
        read_opengait(tmp_path, on_error="raise")
    fixed = read_opengait(tmp_path, assume_confidence=True)
    assert len(fixed.sequences) == 2 and np.all(fixed.sequences[1][..., 2] == 1)


def test_empty_or_missing_roots_raise(tmp_path):
    with pytest.raises(GaitforecastError, match="does not exist"):
        read_opengait(tmp_path / "nope")
    with pytest.raises(GaitforecastError, match="no <id>/<type>/<view>/ folders"):
        read_opengait(tmp_path)
    _put(tmp_path, "001/nm-01/000/x.pkl", _seq(3))
    with pytest.raises(GaitforecastError, match="no usable pose sequence.*too short"):
        read_opengait(tmp_path)


def test_openpose18_is_converted(tmp_path):
    op = _seq(joints=18)
    _put(tmp_path, "7/00/000/000.pkl", op)
    out = read_opengait(tmp_path, frames=70)
    np.testing.assert_array_equal(out.sequences[0], op[:, list(OPENPOSE18_TO_COCO17)])


def test_npz_layouts(tmp_path):
    seqs = np.stack([_seq(60, i) for i in range(3)])
    seqs[1, 0, 0, 0] = np.inf
    np.savez(tmp_path / "a.npz", sequences=seqs, ids=np.array([5, 6, 7]), views=np.array([0, 90, 180]))
    out = read_npz(tmp_path / "a.npz")
    assert list(out.meta["id"]) == [5, 7] and list(out.meta["views"]) == [0, 180]
    assert out.skipped == [(f"{tmp_path / 'a.npz'}[1]", "contains NaN or inf values (or values beyond float32's range, ~3.4e38)")]
    np.savez(tmp_path / "b.npz", **{"001/nm-01/000": _seq(60, 1), "002": _seq(60, 2), "003": _seq(4)})
    out = read_npz(tmp_path / "b.npz")
    assert list(out.meta["id"]) == ["001", "002"] and out.meta["type"].iloc[0] == "nm-01"
    assert len(out.skipped) == 1 and "too short" in out.skipped[0][1]
    np.savez(tmp_path / "c.npz", sequences=seqs)
    with pytest.raises(GaitforecastError, match="'ids'"):
        read_npz(tmp_path / "c.npz")
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(GaitforecastError, match=r"d\.npz: not a readable"):
        read_npz(tmp_path / "d.npz")


def test_fit_length_repeats_cyclically():
    seq = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    assert list(fit_length(seq, 10)[:, 0, 0]) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_casia_b_tree_maps_onto_the_protocol(tmp_path):
    """A CASIA-B-layout tree made from synth-casiab gives the same metrics as the in-memory suite."""
    suite = build_suite("synth-casiab", size="quick")
    keep = (suite.meta["id"] < 6).to_numpy()
    meta, seqs = suite.meta[keep].reset_index(drop=True), suite.sequences[keep]
    for i, row in meta.iterrows():
        _put(tmp_path, f"{row['id'] + 1:03d}/{row['type']}-{row['walk']:02d}/{row['view']:03d}/x.pkl", seqs[i])
    _put(tmp_path, "001/odd-01/000/x.pkl", seqs[0])
    real, skipped = casia_b_suite(tmp_path)
    assert real.name == "casia-b" and real.protocol == "casiab" and len(real) == keep.sum()
    assert len(skipped) == 1 and "not a CASIA-B walk" in skipped[0][1]
    assert set(real.meta["type"]) == {"nm", "bg", "cl"} and real.meta["walk"].max() == 6
    got = evaluate(real, baseline_embeddings(real.sequences))
    from gaitforecast.data.suites import Suite
    want = evaluate(Suite("x", seqs, meta, "casiab"), baseline_embeddings(seqs))
    assert got == pytest.approx(want)

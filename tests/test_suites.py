"""Evaluation protocols on hand-made embeddings, the synthetic suites, and the pretraining pool."""

import json

import numpy as np
import pandas as pd
import pytest

from gaitforecast.data import protocols as P
from gaitforecast.data.corpus import PretrainPool
from gaitforecast.data.suites import SUITE_NAMES, Suite, baseline_embeddings, build_suite, evaluate
from gaitforecast.data.world import WorldConfig
from gaitforecast.errors import GaitforecastError


def test_rank_k_known_answer():
    gallery = np.array([[0.0], [10.0], [20.0]])
    gids = np.array(["a", "b", "c"])
    probe = np.array([[1.0], [9.0], [12.0], [30.0]])
    pids = np.array(["a", "b", "c", "a"])  # 2 right at rank 1; "c" at 12 is 2nd; "a" at 30 is 3rd
    r = P.rank_k(P.distances(probe, gallery), pids, gids, ks=(1, 2, 3))
    assert r == {1: 0.5, 2: 0.75, 3: 1.0}


def test_map_and_minp_hand_computed():
    gallery = np.arange(1.0, 6.0)[:, None]  # ranked 1..5 by distance from 0
    gids = np.array(["A", "B", "A", "C", "A"])
    d = P.distances(np.array([[0.0], [0.0]]), gallery)
    mAP, mINP = P.map_minp(d, np.array(["A", "B"]), gids)
    ap_a = (1 / 1 + 2 / 3 + 3 / 5) / 3
    ap_b = 1 / 2
    assert mAP == pytest.approx((ap_a + ap_b) / 2)
    assert mINP == pytest.approx((3 / 5 + 1 / 2) / 2)


def _casia_meta(n_ids: int = 3, views=(0, 90, 180)) -> pd.DataFrame:
    rows = [(i, t, w, v) for i in range(n_ids) for t, w in
            [("nm", 1), ("nm", 2), ("nm", 3), ("nm", 4), ("nm", 5), ("bg", 1), ("cl", 1)] for v in views]
    return pd.DataFrame(rows, columns=["id", "type", "walk", "view"])


def test_casiab_protocol_known_answer():
    meta = _casia_meta()
    ids, t, v = meta["id"].to_numpy(), meta["type"].to_numpy(), meta["view"].to_numpy()
    claimed = ids.copy()
    claimed[t == "bg"] = (ids[t == "bg"] + 1) % 3  # every BG probe looks like the next person
    wrong_cl = (t == "cl") & (v != 0)
    claimed[wrong_cl] = (ids[wrong_cl] + 1) % 3  # CL right only from view 0
    emb = np.eye(3)[claimed] + 0.01 * np.random.default_rng(0).standard_normal((len(meta), 3))
    suite = Suite("toy", np.zeros((len(meta), 2, 17, 3), np.float32), meta, "casiab")
    r = evaluate(suite, emb)
    assert r["rank1_nm"] == 1.0 and r["rank1_bg"] == 0.0
    assert r["rank1_cl"] == pytest.approx(1 / 3)
    assert r["rank1_mean"] == pytest.approx((1 + 0 + 1 / 3) / 3)


def test_casiab_excludes_identical_views():
    meta = _casia_meta()
    key = meta["id"].to_numpy() * 3 + meta["view"].to_numpy() // 90
    emb = np.eye(9)[key]  # identical view: exact match; cross view: all gallery equally far (tie -> first, id 0)
    r = P.casiab_metrics(emb, meta["id"].to_numpy(), meta["type"].to_numpy(), meta["walk"].to_numpy(),
                         meta["view"].to_numpy())
    assert r["rank1_nm"] == pytest.approx(1 / 3)  # would be 1.0 if identical views counted


def test_gallery_probe_and_covariate_protocols():
    ids = np.array([0, 0, 1, 1, 2, 2])
    emb = np.array([[0.0], [0.1], [5.0], [7.4], [10.0], [2.0]])
    probe = np.array([False, True, False, True, False, True])
    r = P.gallery_probe_metrics(emb, ids, probe, ks=(1, 2), with_map=True)
    # probe 0.1 -> 0 (id 0, hit); 7.4 -> 5 (id 1, hit); 2.0 -> 0 (id 0), then 5 (id 1), then 10 (id 2, rank 3)
    assert r["rank1"] == pytest.approx(2 / 3) and r["rank2"] == pytest.approx(2 / 3)
    assert r["mAP"] == pytest.approx((1 + 1 + 1 / 3) / 3)
    views = np.array([0, 90, 0, 90, 0, 90])
    var = np.array(["nm1", "slow", "nm1", "slow", "nm1", "phone"])
    c = P.covariate_metrics(emb, ids, views, var)
    assert c["rank1"] == pytest.approx(2 / 3) and c["rank1_slow"] == 1.0 and c["rank1_phone"] == 0.0


def test_evaluate_rejects_bad_embeddings():
    suite = build_suite("synth-grew", size="quick")
    with pytest.raises(GaitforecastError, match="expected shape"):
        evaluate(suite, np.zeros((3, 4)))
    bad = np.zeros((len(suite), 4))
    bad[0, 0] = np.nan
    with pytest.raises(GaitforecastError, match="NaN"):
        evaluate(suite, bad)
    with pytest.raises(GaitforecastError, match="unknown suite"):
        build_suite("casia-b")


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_quick_suites_shapes_metrics_and_room_to_learn(name):
    suite = build_suite(name, size="quick")
    assert suite.sequences.shape[1:] == (60, 17, 3) and suite.sequences.dtype == np.float32
    assert len(suite.meta) == len(suite) and "id" in suite.meta
    r = evaluate(suite, baseline_embeddings(suite.sequences))
    expected = {"synth-casiab": {"rank1_nm", "rank1_bg", "rank1_cl", "rank1_mean"},
                "synth-grew": {"rank1", "rank5"}, "synth-gait3d": {"rank1", "rank5", "mAP", "mINP"},
                "synth-psymo": {"rank1", "rank1_slow", "rank1_fast", "rank1_phone"}}[name]
    assert expected <= set(r) and all(0 <= v <= 1 for v in r.values())
    chance = 1 / suite.meta["id"].nunique()
    main = r.get("rank1_mean", r.get("rank1"))
    assert 2 * chance < main < 0.5, (name, r)  # raw joints: above chance, far from perfect


def test_synth_casiab_identity_separability_numbers():
    """Quick synth-casiab (40 ids, chance 2.5%): raw-joint NN measured ~15% cross-view, ~95% same-view."""
    suite = build_suite("synth-casiab", size="quick")
    emb = baseline_embeddings(suite.sequences).astype(np.float64)
    m = suite.meta
    r = evaluate(suite, emb)
    assert 0.06 < r["rank1_mean"] < 0.4
    assert r["rank1_nm"] > r["rank1_cl"]  # coats hurt
    ids, views = m["id"].to_numpy(), m["view"].to_numpy()
    gal = ((m["type"] == "nm") & (m["walk"] <= 4)).to_numpy()
    probe = ((m["type"] == "nm") & (m["walk"] >= 5)).to_numpy()
    same = [P.rank_k(P.distances(emb[probe & (views == v)], emb[gal & (views == v)]), ids[probe & (views == v)],
                     ids[gal & (views == v)], (1,))[1] for v in np.unique(views)]
    assert np.mean(same) > 0.75  # identity is in the data; the difficulty is the view change


@pytest.mark.slow
def test_full_synth_casiab_raw_nn():
    """Full synth-casiab (124 ids, chance 0.8%): raw-joint NN rank1_mean measured ~13%."""
    suite = build_suite("synth-casiab")
    assert len(suite) == 124 * 10 * 11
    r = evaluate(suite, baseline_embeddings(suite.sequences))
    assert 0.05 < r["rank1_mean"] < 0.35


def test_suite_cache_roundtrip_and_regeneration(tmp_path):
    a = build_suite("synth-gait3d", cache_dir=tmp_path, size="quick")
    b = build_suite("synth-gait3d", cache_dir=tmp_path, size="quick")
    assert isinstance(b.sequences, np.memmap)
    np.testing.assert_array_equal(a.sequences, b.sequences)
    pd.testing.assert_frame_equal(a.meta, b.meta, check_dtype=False)
    (folder,) = (tmp_path / "suites").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config_hash"] = "stale"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    c = build_suite("synth-gait3d", cache_dir=tmp_path, size="quick")
    assert not isinstance(c.sequences, np.memmap)  # regenerated, not loaded
    np.testing.assert_array_equal(a.sequences, c.sequences)
    d = build_suite("synth-gait3d", size="quick", seed=1)
    assert np.abs(a.sequences - d.sequences).mean() > 1.0


def test_pretrain_pool_cache_nesting_and_disjoint_identities(tmp_path):
    pool = PretrainPool.open(tmp_path, 1000, frames=30, seed=0)
    assert pool.sequences.shape == (1000, 30, 17, 3) and isinstance(pool.sequences, np.memmap)
    assert pool.manifest["n_identities"] == 250 and len(np.unique(pool.identity)) == 250
    again = PretrainPool.open(tmp_path, 1000, frames=30, seed=0)
    np.testing.assert_array_equal(np.asarray(pool.sequences[:50]), np.asarray(again.sequences[:50]))
    small, big = pool.subset(0.03), pool.subset(0.5)
    assert len(small) == 30 and len(big) == 500 and np.array_equal(big[:30], small)
    assert len(pool.subset(0.0001)) == 1
    with pytest.raises(GaitforecastError, match="fraction"):
        pool.subset(1.5)
    (tmp_path / "pool" / next(p.name for p in (tmp_path / "pool").iterdir() if p.is_dir())
     / "manifest.json").write_text("{}")
    regen = PretrainPool.open(tmp_path, 1000, frames=30, seed=0)
    np.testing.assert_array_equal(np.asarray(regen.sequences), np.asarray(pool.sequences))
    # Pool people never appear in a suite: no suite sequence is a near-copy of a pool sequence.
    pool_emb = baseline_embeddings(np.asarray(pool.sequences))
    suite = build_suite("synth-grew", size="quick", config=pool_config(pool))
    d = P.distances(baseline_embeddings(suite.sequences).astype(np.float64), pool_emb.astype(np.float64))
    assert d.min() > 0.01


def pool_config(pool: PretrainPool) -> WorldConfig:
    return WorldConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in pool.manifest["config"].items()})


def test_identity_streams_are_separate():
    from gaitforecast.data.corpus import _identity_block
    from gaitforecast.data.suites import NAMESPACE, sample_identities
    # A person's style vector (204 unclipped Gaussian draws) repeats only if the seed streams overlap.
    pool_people = {row.tobytes() for row in _identity_block(0, 0, 1.0)["style"].reshape(4096, -1)}
    for name in SUITE_NAMES:
        ss = np.random.SeedSequence([0, NAMESPACE[name]]).spawn(3)[0]
        style = sample_identities(200, np.random.default_rng(ss))["style"].reshape(200, -1)
        assert not any(row.tobytes() in pool_people for row in style)
        assert len({row.tobytes() for row in style}) == 200


def test_sweep_size_is_a_smaller_quick_with_the_same_protocols():
    from gaitforecast.data.suites import SIZES

    suite = build_suite("synth-casiab", size="sweep")
    assert len(suite) == 40 * 10 * 4 and sorted(suite.meta["view"].unique()) == [0, 60, 120, 180]
    metrics = evaluate(suite, baseline_embeddings(suite.sequences))
    assert {"rank1_nm", "rank1_bg", "rank1_cl", "rank1_mean"} <= set(metrics)
    for name in SUITE_NAMES:
        assert SIZES[name]["sweep"][0] <= SIZES[name]["quick"][0]
    with pytest.raises(GaitforecastError, match="full, quick, sweep"):
        build_suite("synth-grew", size="tiny")

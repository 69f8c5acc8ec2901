"""Real pose data end to end: an OpenGait pose tree to pretrain on and a CASIA-B tree scored zero-shot.

The trees are written in the real on-disk format (one pickle of [T, 17, 3] per <id>/<type>/<view>/ folder) from
the synthetic world's CASIA-B-like suite, so the readers, the sweep and the protocol meet real-format files.
"""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from gaitforecast.data.formats import casia_b_suite
from gaitforecast.data.suites import baseline_embeddings, build_suite, evaluate

CLI = [sys.executable, "-c", "from gaitforecast.cli import main; main()"]


def _write_tree(root, suite, ids, views, casia_names: bool) -> int:
    meta = suite.meta
    rows = meta[meta["id"].isin(ids) & meta["view"].isin(views)]
    for i, row in rows.iterrows():
        kind = f"{row['type']}-{row['walk']:02d}" if casia_names else f"walk{row['walk']}{row['type']}"
        leaf = root / f"{row['id']:03d}" / kind / f"{row['view']:03d}"
        leaf.mkdir(parents=True, exist_ok=True)
        (leaf / f"{leaf.name}.pkl").write_bytes(pickle.dumps(np.asarray(suite.sequences[i])))
    return len(rows)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    suite = build_suite("synth-casiab", size="quick")
    n_pool = _write_tree(root / "pool", suite, ids=list(range(0, 12)), views=[0, 36, 72, 108], casia_names=False)
    n_casia = _write_tree(root / "casia", suite, ids=list(range(20, 30)), views=[36, 108], casia_names=True)
    (root / "pool" / "999" / "broken" / "000").mkdir(parents=True)
    (root / "pool" / "999" / "broken" / "000" / "x.pkl").write_bytes(b"not a pickle")
    return root, suite, n_pool, n_casia


def test_casia_b_tree_gives_the_same_protocol_answer_as_the_suite(trees):
    root, suite, _, n_casia = trees
    real, skipped = casia_b_suite(root / "casia")
    assert skipped == [] and len(real.sequences) == n_casia == 10 * 10 * 2
    # The same raw-joint baseline on the same sequences read back from disk gives identical metrics.
    mask = suite.meta["id"].isin(range(20, 30)) & suite.meta["view"].isin([36, 108])
    sub = type(suite)(suite.name, suite.sequences[mask.to_numpy()], suite.meta[mask].reset_index(drop=True),
                      suite.protocol)
    expect = evaluate(sub, baseline_embeddings(sub.sequences))
    got = evaluate(real, baseline_embeddings(real.sequences))
    assert got == pytest.approx(expect)
    assert 0.1 < got["rank1_nm"] <= 1.0


def test_data_check_counts_and_reports_skips(trees):
    root, _, n_pool, _ = trees
    out = subprocess.run(CLI + ["data-check", str(root / "pool"), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["sequences"] == n_pool == 12 * 10 * 4 and doc["identities"] == 12
    assert doc["skipped"] == 1 and "unreadable pickle" in doc["skipped_files"][0]["reason"]
    bad = subprocess.run(CLI + ["data-check", str(root / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_sweep_pretrains_on_real_poses_and_scores_real_casia_b(trees, tmp_path):
    root, _, _, _ = trees
    spec = tmp_path / "real.toml"
    spec.write_text(f"""
[data]
pool_path = "{root / 'pool'}"
casia_b_path = "{root / 'casia'}"
pool_sequences = 400
heldout_sequences = 40
frames = 24
[train]
epochs = 1
batch_size = 32
eval_points = 0
precision = "fp32"
[[grid]]
arch = "gaitformer"
widths = [16]
fractions = [1.0]
""")
    store = tmp_path / "s.duckdb"
    run = subprocess.run(CLI + ["run-small", "--spec", str(spec), "--store", str(store), "--workers", "1",
                                "--cache-dir", str(tmp_path / "cache"), "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    listed = subprocess.run(CLI + ["runs", "--store", str(store), "--json"], capture_output=True, text=True)
    (r,) = json.loads(listed.stdout)
    assert r["status"] == "done" and r["unique_sequences"] == 360
    assert 0.0 <= r["metrics"]["casia-b.rank1_mean"] <= 1.0 and "synth-casiab.rank1_mean" in r["metrics"]
    too_many = spec.read_text().replace("pool_sequences = 400", "pool_sequences = 5000")
    spec.write_text(too_many)
    refused = subprocess.run(CLI + ["run-small", "--spec", str(spec), "--store", str(tmp_path / "t.duckdb"),
                                    "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True)
    assert refused.returncode == 2 and "fewer than" in refused.stderr and "Traceback" not in refused.stderr


def _real_data(path, pairs: str) -> dict:
    return {"pool_path": str(path), "pool_sequences": 64, "pool_frames": 60, "frames": 30, "heldout_sequences": 8,
            "world_seed": 0, "suite_size": "quick", "casia_b_path": "", "pairs": pairs}


def test_multicam_pairs_on_a_real_tree_are_views_of_one_walk(trees, tmp_path):
    from gaitforecast.data.formats import read_poses
    from gaitforecast.skeleton import normalize
    from gaitforecast.train.evaluate import load_pool

    root = trees[0]
    loaded = read_poses(root / "pool", frames=60)
    pool = load_pool(tmp_path, _real_data(root / "pool", "multicam"))
    assert pool.manifest["multicam_paired"] == 64 and pool.manifest["multicam_unpaired"] == 0
    every = normalize(loaded.sequences).reshape(len(loaded.sequences), -1)

    def row_of(seq) -> int:  # which file of the tree a pool row was read from
        return int(np.argmin(np.abs(every - seq.numpy().reshape(1, -1)).sum(1)))

    for i in range(0, 64, 7):
        a, b = loaded.meta.iloc[row_of(pool.sequences[i])], loaded.meta.iloc[row_of(pool.second[i])]
        assert (a["id"], a["type"]) == (b["id"], b["type"]) and a["view"] != b["view"]
    track = load_pool(tmp_path, _real_data(root / "pool", "track"))
    assert track.second is None and np.array_equal(track.sequences.numpy(), pool.sequences.numpy())


def test_multicam_pairs_refuse_a_tree_without_a_second_view(trees, tmp_path):
    from gaitforecast.errors import GaitforecastError
    from gaitforecast.train.evaluate import load_pool

    _, suite, _, _ = trees
    single = tmp_path / "single"
    _write_tree(single, suite, ids=list(range(0, 12)), views=[36], casia_names=False)
    with pytest.raises(GaitforecastError, match="no walk in .* has a second view"):
        load_pool(tmp_path, _real_data(single, "multicam"))

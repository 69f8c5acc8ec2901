"""Gait-recognition evaluation protocols on embeddings + labels (synthetic suites and real data alike).

Use these when you have an embedding per sequence and the sequence labels; :func:`gaitforecast.data.suites.evaluate`
calls them for a Suite. Distance is Euclidean (OpenGait's default); for L2-normalised embeddings it ranks exactly
like cosine distance. Ties are broken by gallery order. All results are fractions in [0, 1].
"""

from __future__ import annotations

import numpy as np

from gaitforecast.errors import GaitforecastError


def check_embeddings(embeddings: np.ndarray, n: int) -> np.ndarray:
    """Validate an embedding matrix [n, E] (finite numbers) and return it as float64."""
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] != n:
        raise GaitforecastError(f"embeddings: expected shape [{n}, E] (one row per sequence), got {emb.shape}")
    if not np.issubdtype(emb.dtype, np.number) or not np.isfinite(emb).all():
        raise GaitforecastError("embeddings contain NaN/inf or non-numbers; check the model output")
    return emb.astype(np.float64)


def distances(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix [P, G]."""
    sq = (probe ** 2).sum(1)[:, None] + (gallery ** 2).sum(1)[None] - 2.0 * probe @ gallery.T
    return np.sqrt(np.maximum(sq, 0.0))


def rank_k(dist: np.ndarray, probe_ids: np.ndarray, gallery_ids: np.ndarray, ks: tuple[int, ...] = (1, 5)
           ) -> dict[int, float]:
    """Fraction of probes whose identity appears among the k nearest gallery sequences, for each k.

    Probes whose identity is absent from the gallery count as misses (as in GREW/Gait3D).
    """
    if dist.shape[0] == 0:
        raise GaitforecastError("rank_k: no probe sequences")
    kmax = min(max(ks), dist.shape[1])
    if kmax == 1:
        top = np.argmin(dist, axis=1)[:, None]  # first of equals: ties go to gallery order
    else:  # partial sort: only the kmax nearest are ordered, (distance, gallery index) ascending
        top = np.sort(np.argpartition(dist, kmax - 1, axis=1)[:, :kmax], axis=1)
        top = np.take_along_axis(top, np.argsort(np.take_along_axis(dist, top, 1), axis=1, kind="stable"), 1)
    hits = gallery_ids[top] == probe_ids[:, None]
    return {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}


def map_minp(dist: np.ndarray, probe_ids: np.ndarray, gallery_ids: np.ndarray) -> tuple[float, float]:
    """Mean average precision and mean inverse negative penalty (Ye et al. 2021) over probes.

    AP = mean over the probe's true matches of precision at that match's rank; INP = (number of true
    matches) / (rank of the hardest true match). Probes without any true match are left out.
    """
    order = np.argsort(dist, axis=1, kind="stable")
    hits = gallery_ids[order] == probe_ids[:, None]
    n_pos = hits.sum(axis=1)
    valid = n_pos > 0
    if not valid.any():
        raise GaitforecastError("map_minp: no probe has a true match in the gallery")
    hits, n_pos = hits[valid], n_pos[valid]
    ranks = np.arange(1, hits.shape[1] + 1)
    cum = np.cumsum(hits, axis=1)
    ap = (hits * cum / ranks).sum(axis=1) / n_pos
    hardest = hits.shape[1] - np.argmax(hits[:, ::-1], axis=1)  # 1-based rank of the last true match
    return float(ap.mean()), float((n_pos / hardest).mean())


def cross_view_rank1(emb: np.ndarray, ids: np.ndarray, views: np.ndarray, probe: np.ndarray,
                     gallery: np.ndarray, exclude_same_view: bool = True, k: int = 1) -> float:
    """CASIA-B / OU-MVLP style rank-1 (rank-``k`` with ``k``): per (probe view, gallery view) pair,
    restricted gallery, averaged.

    ``probe`` and ``gallery`` are boolean masks over sequences. Identical views are left out by default;
    the mean runs over gallery views for each probe view, then over probe views.
    """
    per_probe_view = []
    for v1 in np.unique(views[probe]):
        pm = probe & (views == v1)
        accs = []
        for v2 in np.unique(views[gallery]):
            if exclude_same_view and v1 == v2:
                continue
            gm = gallery & (views == v2)
            d = distances(emb[pm], emb[gm])
            accs.append(rank_k(d, ids[pm], ids[gm], ks=(k,))[k])
        if accs:
            per_probe_view.append(np.mean(accs))
    if not per_probe_view:
        raise GaitforecastError("cross_view_rank1: no (probe view, gallery view) pair to evaluate")
    return float(np.mean(per_probe_view))


def casiab_metrics(emb: np.ndarray, ids: np.ndarray, types: np.ndarray, walks: np.ndarray,
                   views: np.ndarray) -> dict[str, float]:
    """CASIA-B protocol: gallery NM-01..04; probes NM-05..06, BG-01..02, CL-01..02; identical views excluded.

    ``types`` holds 'nm'/'bg'/'cl', ``walks`` the walk number (1..6). Returns rank1_nm, rank1_bg, rank1_cl,
    rank1_mean, and rank5_nm (cross-view rank-5 of the NM probes: a wider-range signal than rank-1 for
    weak encoders). A condition with no probes is left out of the mean (and reported as NaN).
    """
    types = np.char.lower(np.asarray(types).astype(str))
    gallery = (types == "nm") & (walks <= 4)
    if not gallery.any():
        raise GaitforecastError("CASIA-B protocol: no gallery sequences (nm-01..nm-04)")
    probes = {"nm": (types == "nm") & (walks >= 5), "bg": types == "bg", "cl": types == "cl"}
    out = {}
    for cond, mask in probes.items():
        out[f"rank1_{cond}"] = cross_view_rank1(emb, ids, views, mask, gallery) if mask.any() else float("nan")
    present = [v for v in out.values() if not np.isnan(v)]
    if not present:
        raise GaitforecastError("CASIA-B protocol: no probe sequences (nm-05/06, bg, cl)")
    out["rank1_mean"] = float(np.mean(present))
    out["rank5_nm"] = cross_view_rank1(emb, ids, views, probes["nm"], gallery, k=5) if probes["nm"].any() \
        else float("nan")
    return out


def gallery_probe_metrics(emb: np.ndarray, ids: np.ndarray, is_probe: np.ndarray,
                          ks: tuple[int, ...] = (1, 5), with_map: bool = False) -> dict[str, float]:
    """GREW / Gait3D style: every probe ranked against the whole gallery (all non-probe sequences)."""
    is_probe = np.asarray(is_probe, bool)
    if not is_probe.any() or is_probe.all():
        raise GaitforecastError("gallery/probe protocol needs both probe and gallery sequences")
    d = distances(emb[is_probe], emb[~is_probe])
    ranks = rank_k(d, ids[is_probe], ids[~is_probe], ks)
    out = {f"rank{k}": v for k, v in ranks.items()}
    if with_map:
        out["mAP"], out["mINP"] = map_minp(d, ids[is_probe], ids[~is_probe])
    return out


def covariate_metrics(emb: np.ndarray, ids: np.ndarray, views: np.ndarray, variation: np.ndarray,
                      gallery_variation: str = "nm1") -> dict[str, float]:
    """PsyMo-like: gallery = the ``gallery_variation`` walks of all views; each other walk is a probe ranked
    against the gallery minus its own view. Returns rank1 (all probes) and rank1_<variation> per covariate."""
    variation = np.asarray(variation).astype(str)
    gallery = variation == gallery_variation
    if not gallery.any():
        raise GaitforecastError(f"covariate protocol: no gallery walks named {gallery_variation!r}")
    hits = np.zeros(len(ids), bool)
    for v in np.unique(views):
        pm, gm = (~gallery) & (views == v), gallery & (views != v)
        if pm.any() and gm.any():
            d = distances(emb[pm], emb[gm])
            hits[pm] = ids[gm][np.argmin(d, axis=1)] == ids[pm]
    probes = ~gallery
    out = {"rank1": float(hits[probes].mean())}
    for var in np.unique(variation[probes]):
        out[f"rank1_{var}"] = float(hits[variation == var].mean())
    return out

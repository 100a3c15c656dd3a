"""Re-ID evaluation of a model on a query / gallery split (Market-1501 protocol).

The one code path behind the trainer's end-of-stage evaluation and `sal-evaluate`
(`sal_tf/cli/evaluate.py`). Records are anything with `.path`, `.pid`, `.camid`
(`sal_tf.data.Record`); images come as `tf.data` datasets built by the caller
(`sal_tf.data.pipelines.build_eval_dataset`), so this module needs nothing above it.

Re-ranking (k-reciprocal, Zhong et al. 2017: k1 20, k2 6, λ 0.3) runs on the gallery **without
junk** (pid −1), as torchreid and fast-reid do: junk is ignored by the metric anyway, but left in
it would change the k-reciprocal neighbourhoods of the other images.
"""

import numpy as np

from sal_tf.evaluation.blockwise import evaluate_features
from sal_tf.evaluation.calibration import calibrate_features
from sal_tf.evaluation.distance import distance_matrix
from sal_tf.evaluation.features import extract_features
from sal_tf.evaluation.rank import evaluate_rank
from sal_tf.evaluation.rerank import re_rank_features
from sal_tf.evaluation.visualize import save_rank_lists
from sal_tf.utils.person_ids import JUNK_PID

SUMMARY_KEYS = ("mAP", "mINP", "rank1", "rank5", "rank10")


def ids_of(records):
    """(pids, camids) int64 arrays of a record list."""
    return np.array([r.pid for r in records], np.int64), np.array([r.camid for r in records], np.int64)


def summarize(result):
    """A `RankResult` → {mAP, mINP, rank1, rank5, rank10, num_valid_queries} (floats in 0..1)."""
    cmc = np.asarray(result.cmc)
    ranks = {f"rank{k}": float(cmc[min(k - 1, len(cmc) - 1)]) for k in (1, 5, 10)}
    return {"mAP": float(result.mAP), "mINP": float(result.mINP), **ranks,
            "num_valid_queries": int(result.num_valid_queries)}  # fmt: skip


def evaluate_embeddings(q_feats, g_feats, query, gallery, rerank=True, metric="euclidean"):
    """CMC / mAP / mINP of embeddings (and the re-ranked scores on the junk-free gallery).

    Distances are computed block by block (`evaluate_features`), so no [Q, G] matrix larger than the
    memory budget is ever held.

    Args:
        q_feats, g_feats: float32 [Q, D] / [G, D] embeddings (L2-normalised for the paper's protocol).
        query, gallery: record lists (pid −1 = junk, same-pid-same-camera removed per query).

    Returns:
        summary dict, with `rerank` when asked.
    """
    q_pids, q_cams = ids_of(query)
    g_pids, g_cams = ids_of(gallery)
    out = summarize(evaluate_features(q_feats, g_feats, q_pids, g_pids, q_cams, g_cams, metric=metric))
    if rerank:
        keep = g_pids != JUNK_PID
        rr = re_rank_features(q_feats, g_feats[keep], metric=metric)
        out["rerank"] = summarize(evaluate_rank(rr, q_pids, g_pids[keep], q_cams, g_cams[keep]))
    return out


def evaluate_model(
    model,
    query_images,
    gallery_images,
    query,
    gallery,
    rerank=True,
    flip=False,
    metric="euclidean",
    verbose=True,
    rank_list_queries=(),
    rank_list_path=None,
):
    """Extracts L2-normalised embeddings of both splits and scores them (`evaluate_embeddings`).

    Args:
        model: a Keras model returning a dict with "embedding", or a callable images → [b, D].
        query_images, gallery_images: `tf.data` datasets of float32 RGB batches, in record order.
        query, gallery: the record lists of those images.
        flip: average each image's embedding with its mirror's.
        rank_list_queries: query indices whose rank lists are drawn (top 10).
        rank_list_path: PNG file for them (None: only returned).

    Returns:
        (summary dict, rank-list picture): the summary also holds `calibration` (the "same person?"
        distances across cameras, `sal_tf.evaluation.calibration`); the picture is a uint8 [H, W, 3]
        array with `rank_list_queries`, None without.
    """
    qf = extract_features(model, query_images, flip=flip, normalize=True, verbose=verbose)
    gf = extract_features(model, gallery_images, flip=flip, normalize=True, verbose=verbose)
    out = evaluate_embeddings(qf, gf, query, gallery, rerank=rerank, metric=metric)
    q_pids, q_cams = ids_of(query)
    g_pids, g_cams = ids_of(gallery)
    out["calibration"] = calibrate_features(qf, gf, q_pids, g_pids, q_cams, g_cams)  # "same person?" (calibration.py)
    if not len(rank_list_queries):
        return out, None
    chosen = [int(i) for i in rank_list_queries]
    dist = distance_matrix(qf[chosen], gf, metric=metric)  # only the drawn rows
    rows = [query[i] for i in chosen]
    return out, save_rank_lists(rank_list_path, dist, rows, gallery, range(len(rows)), topk=10)


def format_results(res):
    """A small table of the metrics (in %), with the re-ranked row when present."""
    rows = [("plain", res)] + ([("re-ranked", res["rerank"])] if "rerank" in res else [])
    lines = [f"{'':10s} {'mAP':>7s} {'mINP':>7s} {'R-1':>7s} {'R-5':>7s} {'R-10':>7s}"]
    for name, r in rows:
        lines.append(f"{name:10s} " + " ".join(f"{100 * r[k]:7.2f}" for k in SUMMARY_KEYS))
    return "\n".join(lines)

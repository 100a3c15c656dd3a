"""Re-ID evaluation of a model on a query/gallery split (Market-1501 protocol)."""

import numpy as np

from sal_tf.data import pipelines
from sal_tf.evaluation import distance_matrix, evaluate_rank, extract_features, re_rank_features, save_rank_lists


def evaluate_reid(
    model,
    query,
    gallery,
    image_size,
    batch_size=128,
    rerank=True,
    flip=False,
    metric="euclidean",
    verbose=True,
    rank_list_queries=4,
    rank_list_path=None,
):
    """Extracts L2-normalised embeddings and scores CMC / mAP / mINP.

    Args:
        model: a model whose call returns a dict with `embedding`.
        query, gallery: lists of `Record` (path, pid, camid).
        image_size: (H, W) the model expects.
        rerank: also score k-reciprocal re-ranked distances (k1=20, k2=6, λ=0.3).

    Returns:
        dict: mAP, mINP, rank1/5/10, num_valid_queries, `rerank` (same keys) when
        asked, and `rank_list_image` (uint8 [H, W, 3]) for TensorBoard.
    """
    q_ds = pipelines.build_eval_dataset(query, image_size=image_size, batch_size=batch_size)
    g_ds = pipelines.build_eval_dataset(gallery, image_size=image_size, batch_size=batch_size)
    qf = extract_features(model, q_ds, flip=flip, normalize=True, verbose=verbose)
    gf = extract_features(model, g_ds, flip=flip, normalize=True, verbose=verbose)
    q_pids = np.array([r.pid for r in query])
    g_pids = np.array([r.pid for r in gallery])
    q_cams = np.array([r.camid for r in query])
    g_cams = np.array([r.camid for r in gallery])
    dist = distance_matrix(qf, gf, metric=metric)
    out = _summary(evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams))
    if rerank:
        rr = re_rank_features(qf, gf, metric=metric)
        out["rerank"] = _summary(evaluate_rank(rr, q_pids, g_pids, q_cams, g_cams))
    n = min(rank_list_queries, len(query))
    if n:
        idx = np.linspace(0, len(query) - 1, n).astype(int)
        out["rank_list_image"] = save_rank_lists(rank_list_path, dist, query, gallery, idx, topk=10)
    return out


def _summary(result):
    cmc = np.asarray(result.cmc)
    return {
        "mAP": float(result.mAP),
        "mINP": float(result.mINP),
        "rank1": float(cmc[0]),
        "rank5": float(cmc[min(4, len(cmc) - 1)]),
        "rank10": float(cmc[min(9, len(cmc) - 1)]),
        "num_valid_queries": int(result.num_valid_queries),
    }


def format_results(res):
    """A small table of the metrics, with the re-ranked row when present."""
    rows = [("plain", res)]
    if "rerank" in res:
        rows.append(("re-ranked", res["rerank"]))
    lines = [f"{'':10s} {'mAP':>7s} {'mINP':>7s} {'R-1':>7s} {'R-5':>7s} {'R-10':>7s}"]
    for name, r in rows:
        lines.append(
            f"{name:10s} {100 * r['mAP']:7.2f} {100 * r['mINP']:7.2f} {100 * r['rank1']:7.2f} "
            f"{100 * r['rank5']:7.2f} {100 * r['rank10']:7.2f}"
        )
    return "\n".join(lines)

"""CMC / mAP / mINP straight from embeddings, within a memory limit.

`evaluate_features` computes the query×gallery distances a block of query rows at a
time (the arithmetic of `distance_matrix`), ranks each block at once (`evaluate_rank`'s
methods) and keeps only the hit positions, so the full matrix is held only when it fits
in `max_memory`. An MSMT17-sized case (11,659 × 82,161, 3.8 GB of float32 distances)
thus runs in a few hundred MB besides the features.
"""

from sal_tf.evaluation.distance import as_feature_pair, check_metric, distance_block, prepare
from sal_tf.evaluation.rank import HitBlocks, check_labels, check_options

_SORT_BLOCK = 4 << 20  # distances per block for method="sort" (its masks and keys take ~6× the block)


def available_memory():
    """Bytes of memory available to new allocations (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_max_memory():
    """2 GiB, or a quarter of the available memory when that is less."""
    avail = available_memory()
    return 2 << 30 if avail is None else min(2 << 30, avail // 4)


def block_rows(num_query, num_gallery, max_memory=None, method="count"):
    """Query rows per distance block: all of them when [num_query, num_gallery] float32 fits."""
    budget = default_max_memory() if max_memory is None else int(max_memory)
    rows = budget // (4 * max(num_gallery, 1))
    if method == "sort":
        rows = min(rows, _SORT_BLOCK // max(num_gallery, 1))
    return int(min(num_query, max(1, rows)))


def evaluate_features(
    q_feats,
    g_feats,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    metric="euclidean",
    max_rank=50,
    ap="noninterpolated",
    method="auto",
    max_memory=None,
):
    """`evaluate_rank(distance_matrix(q_feats, g_feats, metric), ...)` without the full matrix.

    Args:
        q_feats: float [num_query, dim]; g_feats: float [num_gallery, dim].
        q_pids, g_pids, q_camids, g_camids: int labels (pid −1 junk, 0 distractor).
        metric: "euclidean", "sqeuclidean" or "cosine" (see `distance_matrix`).
        max_rank, ap, method: as in `evaluate_rank`.
        max_memory: bytes for one block of float32 distances (default: 2 GiB or a quarter of
            the available memory, whichever is less); the whole matrix is used when it fits.

    Returns:
        `RankResult`, equal to the full-matrix path's.
    """
    method = check_options(max_rank, ap, method)
    check_metric(metric)
    if max_memory is not None and (isinstance(max_memory, bool) or int(max_memory) < 1):
        raise ValueError(f"`max_memory` must be a positive number of bytes. Received: max_memory={max_memory!r}")
    q, g = as_feature_pair(q_feats, g_feats)
    nq, ng = len(q), len(g)
    if nq == 0 or ng == 0:
        raise ValueError(f"Empty query or gallery: q_feats.shape={q.shape}, g_feats.shape={g.shape}")
    labels = check_labels(nq, ng, q_pids, g_pids, q_camids, g_camids)
    q, q_sq = prepare(q, metric)
    g, g_sq = prepare(g, metric)
    step = block_rows(nq, ng, max_memory, method)
    hits = HitBlocks(*labels, method=method, name="distances")
    for s in range(0, nq, step):
        e = min(s + step, nq)
        d = distance_block(q[s:e], None if q_sq is None else q_sq[s:e], g, g_sq, metric)
        hits.add(d, s)
        del d
    return hits.result(max_rank, ap)

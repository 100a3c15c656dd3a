"""The classic dense k-reciprocal re-ranking, the reference for `rerank`.

A transliteration of Zhong et al.'s code (CVPR 2017, person-re-ranking) as torchreid
ships it (`torchreid/utils/rerank.py`, `re_ranking`): the same steps in the same order,
shorter names, and one change: the argsort is stable, so that ties go to the lower index
as in `rerank`. It holds several
N×N float32 matrices (N = num_query + num_gallery) and loops over the items in Python:
for tests and the benchmark's baseline (`benchmarks/evaluation.py`), not for real sets.
"""

import numpy as np


def classic_re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Re-ranked [num_query, num_gallery] distances from the q×g, q×q and g×g distance matrices."""
    dist = np.concatenate([np.concatenate([q_q, q_g], 1), np.concatenate([q_g.T, g_g], 1)], 0)
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(1.0 * dist / np.max(dist, axis=0))
    n, nq = dist.shape[0], q_g.shape[0]
    V = np.zeros_like(dist, dtype=np.float32)
    rank = np.argsort(dist, axis=1, kind="stable").astype(np.int32)
    k_half = int(np.around(k1 / 2.0))
    for i in range(n):
        forward = rank[i, : k1 + 1]
        backward = rank[forward, : k1 + 1]
        recip = forward[np.where(backward == i)[0]]
        expanded = recip
        for c in recip:
            c_forward = rank[c, : k_half + 1]
            c_backward = rank[c_forward, : k_half + 1]
            c_recip = c_forward[np.where(c_backward == c)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2.0 / 3 * len(c_recip):
                expanded = np.append(expanded, c_recip)
        expanded = np.unique(expanded)
        weight = np.exp(-dist[i, expanded])
        V[i, expanded] = weight / np.sum(weight)
    dist = dist[:nq]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(n):
            V_qe[i] = np.mean(V[rank[i, :k2]], axis=0)
        V = V_qe
        del V_qe
    del rank
    inv_index = [np.where(V[:, j] != 0)[0] for j in range(n)]
    jaccard = np.zeros_like(dist, dtype=np.float32)
    for i in range(nq):
        t_min = np.zeros(n, dtype=np.float32)
        for j in np.where(V[i] != 0)[0]:
            t_min[inv_index[j]] += np.minimum(V[i, j], V[inv_index[j], j])
        jaccard[i] = 1 - t_min / (2.0 - t_min)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:, nq:]

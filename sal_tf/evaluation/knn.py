"""Nearest and farthest neighbours from faiss, for re-ranking large sets (`rerank`).

k-reciprocal re-ranking (Zhong et al. 2017) needs, per item, its k nearest neighbours
and its largest distance (each column of the classic code's distance matrix is divided
by its maximum). Both come from faiss on the prepared rows (`distance.prepare`: raw
rows for the Euclidean metrics, L2-normalised rows for cosine, so L2 order = metric order):

* nearest: `IndexFlatL2` (exact) or `IndexIVFFlat` (inverted lists, `nprobe` of `nlist`
  probed; exact when nprobe = nlist);
* farthest: the largest |x_i − x_r|² = |x_i|² + max_r (|x_r|² − 2 x_i·x_r), a maximum
  inner product of [x_i, 1] with [−2 x_r, |x_r|²]: `IndexFlatIP` or an IVF on the inner
  product.

faiss uses one OpenMP thread per core. Callers recompute the distances of the returned
pairs with their own arithmetic.
"""

import numpy as np

from sal_tf.evaluation.rank_count import num_threads

KNN_MODES = ("auto", "dense", "flat", "ivf")


def _faiss(threads=None):
    import faiss

    faiss.omp_set_num_threads(int(threads or num_threads()))
    return faiss


def ivf_sizes(n, nlist=None, nprobe=None):
    """(nlist, nprobe): about √n lists (at least 1, at most n / 39 so k-means has 39
    points per centroid), and 1/16 of them probed (at least 8)."""
    if nlist is None:
        nlist = int(np.clip(round(np.sqrt(n)), 1, max(1, n // 39)))
    if nprobe is None:
        nprobe = max(8, nlist // 16)
    return int(nlist), int(min(nprobe, nlist))


def _index(faiss, dim, exact, metric_ip, train, nlist, nprobe, seed=0):
    flat = faiss.IndexFlatIP(dim) if metric_ip else faiss.IndexFlatL2(dim)
    if exact:
        return flat
    metric = faiss.METRIC_INNER_PRODUCT if metric_ip else faiss.METRIC_L2
    index = faiss.IndexIVFFlat(flat, dim, nlist, metric)
    index.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = train if len(train) <= 64 * nlist else train[rng.choice(len(train), 64 * nlist, replace=False)]
    index.train(np.ascontiguousarray(sample))
    index.nprobe = nprobe
    return index


def nearest(x, queries, k, exact=True, nlist=None, nprobe=None, threads=None):
    """Indices [len(queries), k] (int64, −1 where fewer were found) of the k nearest rows of
    `x` (float32 [n, dim]) in L2 to the rows `queries` of `x`, roughly nearest first."""
    faiss = _faiss(threads)
    nlist, nprobe = ivf_sizes(len(x), nlist, nprobe)
    index = _index(faiss, x.shape[1], exact, False, x, nlist, nprobe)
    index.add(x)
    _, idx = index.search(np.ascontiguousarray(x[queries]), int(min(k, len(x))))
    return idx


def farthest(x, queries, exact=True, nlist=None, nprobe=None, threads=None):
    """Index [len(queries)] (int64) of the row of `x` farthest in L2 from each row `queries`."""
    faiss = _faiss(threads)
    sq = np.einsum("ij,ij->i", x, x)
    base = np.concatenate([-2.0 * x, sq[:, None]], axis=1).astype(np.float32)
    nlist, nprobe = ivf_sizes(len(x), nlist, nprobe)
    index = _index(faiss, base.shape[1], exact, True, base, nlist, nprobe)
    index.add(base)
    q = np.concatenate([x[queries], np.ones((len(queries), 1), np.float32)], axis=1)
    _, idx = index.search(np.ascontiguousarray(q), 1)
    return np.where(idx[:, 0] < 0, queries, idx[:, 0])  # none found: itself (distance 0)

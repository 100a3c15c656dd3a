"""Nearest and farthest neighbours for k-reciprocal re-ranking (`rerank`).

k-reciprocal re-ranking (Zhong et al. 2017) needs, per item, its k nearest neighbours
and its largest distance (each column of the classic code's distance matrix is divided
by its maximum). Found here on the prepared rows (`distance.prepare`: raw rows for the
Euclidean metrics, L2-normalised rows for cosine):

* `exact_neighbours` (exact, the default of `re_rank_features`): the N×N squared
  distances a block of rows at a time, never held whole. D is symmetric, so block
  [s, e) is one BLAS product x[s:e] @ x[s:].T with the items from s on (the upper
  triangle: N²·dim/2 multiply-adds in all), in the arithmetic of
  `distance.distance_block`; a numba kernel (`knn_kernel`) squares it and merges each
  entry into the k-best lists of its row and, right of the diagonal, of its column's item,
  sorted by (d², index) so ties go to the lower index, and keeps the maxima. Memory: the
  strip (from a budget) and the [N, k] lists;
* faiss flat indexes: `IndexFlatL2` (nearest) and `IndexFlatIP` over [−2 x_r, |x_r|²]
  queried with [x_i, 1] (farthest: |x_i − x_r|² = |x_i|² + max_r (|x_r|² − 2 x_i·x_r)),
  in L2 order (= metric order on the prepared rows);
* inverted lists (approximate): faiss k-means puts the rows into `nlist` lists; the rows
  of one list are searched together, with one BLAS product, against the `nprobe` lists
  whose centroids are nearest to their own list's centroid (farthest: the nprobe/4 lists
  whose centroids are farthest). Exhaustive, hence exact, when nprobe = nlist. faiss's
  own `IndexIVFFlat` scans a list per query, memory-bound on 1024-d features (BUILD.md
  "Evaluation" gives the figures), which the grouped product avoids.

faiss and BLAS use one thread per core. Distances come with the indices, in the
arithmetic of `distance_matrix`.
"""

import concurrent.futures

import numpy as np

from sal_tf.evaluation.distance import check_metric, distance_block, pair_distances
from sal_tf.evaluation.rank_count import num_threads
from sal_tf.utils.checks import check_int

KNN_MODES = ("auto", "dense", "exact", "flat", "ivf")
STRIP_BUDGET = 128 << 20  # bytes of one strip of products in `exact_neighbours`


def ivf_sizes(n, nlist=None, nprobe=None):
    """(nlist, nprobe): 4·√n lists (at least 1, at most n / 39 so that k-means has 39
    points per centroid), and 1/16 of them probed (at least 8). On noisy 1024-d features
    finer lists found the true neighbours far more often than √n lists at the same cost
    (recall@21 0.56 vs 0.29, Market-sized benchmark case)."""
    if nlist is None:
        nlist = int(np.clip(round(4 * np.sqrt(n)), 1, max(1, n // 39)))
    if nprobe is None:
        nprobe = max(8, nlist // 16)
    return int(nlist), int(min(nprobe, nlist))


class NeighbourIndex:
    """k nearest and the farthest rows of `x` for given rows of `x`, with their distances.

    Args:
        x: float32 [n, dim] rows prepared for `metric` (`distance.prepare`).
        metric: the distances returned ("euclidean", "sqeuclidean" or "cosine"), computed
            as `distance.distance_block` / `pair_distances` do.
        exact: faiss flat indexes (exact) or grouped inverted lists (`nlist`, `nprobe`).
        seed: k-means seed.
    """

    def __init__(self, x, metric="euclidean", exact=True, nlist=None, nprobe=None, seed=0, threads=None):
        import faiss

        faiss.omp_set_num_threads(int(threads or num_threads()))
        self.faiss, self.x, self.metric, self.exact = faiss, x, metric, exact
        self.sq = np.einsum("ij,ij->i", x, x)
        self.metric_sq = None if metric == "cosine" else self.sq
        self.nlist, self.nprobe = ivf_sizes(len(x), nlist, nprobe)
        if not exact:
            km = faiss.Kmeans(x.shape[1], self.nlist, niter=10, seed=seed, max_points_per_centroid=32)
            km.train(x)
            self.labels = km.index.search(x, 1)[1][:, 0]
            self.lists = np.argsort(self.labels, kind="stable")
            self.starts = np.searchsorted(self.labels[self.lists], np.arange(self.nlist + 1))
            c = km.centroids
            c_sq = np.einsum("ij,ij->i", c, c)
            self.centroid_d = c_sq[:, None] + c_sq[None, :] - 2.0 * (c @ c.T)

    def _sq(self, idx):
        return None if self.metric_sq is None else self.metric_sq[idx]

    def _pairs(self, i, j):
        """Distances of pairs (i, j) (j = −1: +inf)."""
        jj = np.where(j < 0, i, j)
        out = np.empty(len(i), np.float32)
        for a in range(0, len(i), 1 << 15):
            s = slice(a, a + (1 << 15))
            xi, xj = self.x[i[s]], self.x[jj[s]]
            out[s] = pair_distances(xi, self._sq(i[s]), xj, self._sq(jj[s]), self.metric)
        out[j < 0] = np.inf
        return out

    def _members(self, lists):
        return np.concatenate([self.lists[self.starts[c] : self.starts[c + 1]] for c in lists])

    def _grouped(self, rows, k, far):
        """Rows sharing a list searched together, with one product against the probed lists:
        (indices, distances) [len(rows), k], −1 / inf where fewer exist."""
        order = np.argsort(self.labels[rows], kind="stable")
        rows = rows[order]
        bounds = np.searchsorted(self.labels[rows], np.arange(self.nlist + 1))
        probe = max(1, self.nprobe // 4) if far and self.nprobe < self.nlist else self.nprobe
        idx = np.full((len(rows), k), -1, np.int64)
        dist = np.full((len(rows), k), np.inf, np.float32)
        for c in range(self.nlist):
            a, b = bounds[c], bounds[c + 1]
            if a == b:
                continue
            near = np.argsort(-self.centroid_d[c] if far else self.centroid_d[c], kind="stable")
            cand = self._members(near[:probe])
            if len(cand) < k:
                cand = self._members(near)
            r = rows[a:b]
            d = distance_block(self.x[r], self._sq(r), self.x[cand], self._sq(cand), self.metric)
            kk = min(k, len(cand))
            key = -d if far else d
            top = np.argpartition(key, kk - 1, axis=1)[:, :kk] if kk < len(cand) else np.tile(np.arange(kk), (b - a, 1))
            idx[a:b, :kk] = cand[top]
            dist[a:b, :kk] = np.take_along_axis(d, top, axis=1)
        out_idx, out_dist = np.empty_like(idx), np.empty_like(dist)
        out_idx[order], out_dist[order] = idx, dist
        return out_idx, out_dist

    def nearest(self, rows, k):
        """(int64 indices, float32 distances) [len(rows), k] of the k nearest rows, in any
        order (−1 / inf where fewer exist)."""
        k = int(min(k, len(self.x)))
        if not self.exact:
            return self._grouped(rows, k, far=False)
        index = self.faiss.IndexFlatL2(self.x.shape[1])
        index.add(self.x)
        idx = index.search(np.ascontiguousarray(self.x[rows]), k)[1]
        return idx, self._pairs(np.repeat(rows, k), idx.ravel()).reshape(idx.shape)

    def farthest(self, rows):
        """(int64 index, float32 distance) [len(rows)] of the farthest row from each
        (approximate unless exact)."""
        if not self.exact:
            idx, dist = self._grouped(rows, 1, far=True)
            return idx[:, 0], dist[:, 0]
        base = np.concatenate([-2.0 * self.x, self.sq[:, None]], axis=1).astype(np.float32)
        index = self.faiss.IndexFlatIP(base.shape[1])
        index.add(base)
        q = np.concatenate([self.x[rows], np.ones((len(rows), 1), np.float32)], axis=1)
        idx = index.search(np.ascontiguousarray(q), 1)[1][:, 0]
        idx = np.where(idx < 0, rows, idx)
        return idx, self._pairs(rows, idx)


def exact_neighbours(x, x_sq, metric, k, block_size=None, on_strip=None, budget=STRIP_BUDGET):
    """Exact k nearest items (self included) and largest squared distance of every row of `x`.

    Args:
        x: float32 [n, dim] rows prepared for `metric` (`distance.prepare`).
        x_sq: their squared norms (None for cosine).
        metric: "euclidean", "sqeuclidean" or "cosine" (`distance.distance_block` arithmetic).
        k: neighbours kept per row, 1..n.
        block_size: rows per strip (default: as many as fit `budget` bytes of products).
        on_strip: called as on_strip(s, e, d2) with d2 = float32 [e − s, n − s], the squared
            distances of rows s..e to items s.. (valid during the call only), in order of s.
        budget: bytes of one strip when `block_size` is None (two are alive at a time).

    Returns:
        (int32 indices, float32 squared distances) [n, k], ascending by (d², index), and the
        float32 [n] maxima of the squared distances.
    """
    from sal_tf.evaluation import knn_kernel

    check_metric(metric)
    n = len(x)
    if check_int(k, "k") > n:
        raise ValueError(f"`k` must be at most the number of rows, {n}. Received: k={k!r}")
    block_size = None if block_size is None else check_int(block_size, "block_size")
    if n >= 1 << 32:
        raise ValueError(f"`x` must have fewer than 2**32 rows. Received: {n}")
    sq = np.zeros(n, np.float32) if x_sq is None else np.asarray(x_sq, np.float32)
    code = knn_kernel.METRIC_CODES[metric]
    heaps = np.full((n, int(k)), knn_kernel.EMPTY, np.uint64)
    row_max = np.zeros(n, np.float32)

    def merge(s, e, m):
        knn_kernel.add_strip(m, sq, s, code, heaps, row_max)
        if on_strip is not None:
            on_strip(s, e, m)

    # the kernel (one thread, no GIL) on strip t while BLAS computes strip t + 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending, s = None, 0
        while s < n:
            e = min(n, s + (block_size or max(1, budget // (4 * (n - s)))))
            m = x[s:e] @ x[s:].T
            if pending is not None:
                pending.result()
            pending, s = pool.submit(merge, s, e, m), e
            del m
        pending.result()
    keys = np.sort(heaps, axis=1)
    idx = (keys & np.uint64(0xFFFFFFFF)).astype(np.int32)
    d2 = (keys >> np.uint64(32)).astype(np.uint32).view(np.float32)
    return idx, d2, row_max

"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), blockwise and sparse.

Gives the output of the classic implementation (person-re-ranking, as shipped in
torchreid `utils/rerank.py` and fast-reid; transliterated in `rerank_classic`) with ties
broken by the lower index, without ever holding an N×N matrix (N = num_query + num_gallery):

1. D is the N×N distance matrix [[q_q, q_g], [q_gᵀ, g_g]]; like the classic code we
   square it and divide each column by its maximum, so row i of the result is
   od[i, :] = D[:, i]² / max_r D[r, i]². Pass 1 computes od a block of rows at a
   time and keeps each row's maximum, its 3·(k1+1) nearest neighbours with their od
   values, and the query×gallery part (the output buffer).
2. k-reciprocal sets R(i) over the top k1+1 (self included); each member c whose own
   k-reciprocal set over the top round(k1/2)+1 overlaps R(i) by more than 2/3 of its
   size adds that set; V[i, j] = exp(−od[i, j]) over the expanded set, normalised to
   sum 1 (od looked up among the kept neighbours, recomputed for the few others).
   V is sparse (CSR, ~N·k1 entries).
3. Query expansion: V[i] ← mean of V over the top k2 neighbours of i (self included).
4. Jaccard distance for query i and gallery g: 1 − Σmin(V_i, V_g) / (2 − Σmin(V_i, V_g)),
   through an inverted index of V's columns.
5. final = (1 − λ)·Jaccard + λ·od, float32 [num_query, num_gallery].

Memory is the q×g output plus O(N·k1) for the neighbour lists and V. Pass 1 is
where the time goes; `re_rank_features(knn_mode=...)` picks how it finds neighbours:

* "exact" (and "auto" where numba is installed, at every size): `knn.exact_neighbours`,
  the upper triangle of D a strip of rows at a time (one BLAS product per strip,
  `distance_block` arithmetic, N²·dim/2 multiply-adds) with the k-best lists and maxima
  kept by a numba kernel; no TensorFlow;
* "dense": every row of od in TensorFlow (matrix product and top-k, N²·dim multiply-adds);
  exact too, kept as a second implementation;
* "flat" / "ivf": query rows as "dense" (they give the output, their maxima and the
  gallery items' maxima over the queries); gallery rows from `knn`: faiss exact search, or
  inverted lists (faiss k-means, a list searched at a time with one BLAS product;
  ~nprobe/nlist of the N² work), their k + margin candidates re-ranked with this module's
  own distances. A gallery item's maximum is the largest of its distance to the queries,
  to its candidates and to its farthest item found in the lists. "flat" and an exhaustive
  "ivf" (nprobe = nlist) equal "dense" up to float rounding; "ivf" with the default
  probing is approximate (it misses true neighbours), so it is only used when asked for.
"""

import numpy as np

from sal_tf.evaluation import knn
from sal_tf.evaluation.distance import as_feature_pair, as_matrix, check_metric, distance_block, pair_distances, prepare
from sal_tf.evaluation.rank_count import numba_available
from sal_tf.utils.checks import check_int

_ROW_BUDGET = 8 << 20  # distances held per block in pass 1 (32 MiB of float32)
_PAIR_CHUNK = 1 << 15  # feature pairs gathered at once for the weights
_KEEP_FACTOR = 3  # neighbours kept per item with their od values: 3 (k1 + 1)
_TERM_BUDGET = 1 << 20  # (query, gallery, column) terms per Jaccard block (~50 MiB)


# --------------------------------------------------------------------- rows of od
class _FeatureRows:
    """Squared distances computed from features.

    `first_pass(s, e, k)` runs in TensorFlow (matrix product, element-wise ops and
    top-k on every core, no host copy of the [b, N] block) with the formula of
    `distance_matrix`; `pairs(i, j)` uses its numpy arithmetic.
    """

    def __init__(self, feats, metric):
        self.x, self.x_sq = prepare(feats, metric)
        self.metric = metric
        self.n = feats.shape[0]
        self._tf = None

    def _sq(self, idx):
        return None if self.x_sq is None else self.x_sq[idx]

    def square_block(self, s, e):
        """tf float32 [e − s, n]: D² of rows s..e to every item."""
        import tensorflow as tf

        if self._tf is None:
            sq = None if self.x_sq is None else tf.constant(self.x_sq)
            self._tf = (tf.constant(self.x), sq)
        x, x_sq = self._tf
        m = tf.matmul(x[s:e], x, transpose_b=True)
        if self.metric == "cosine":
            m = tf.clip_by_value(1.0 - m, 0.0, 2.0)
        else:
            m = tf.maximum(m * -2.0 + x_sq[s:e, None] + x_sq[None, :], 0.0)
            if self.metric == "euclidean":
                m = tf.sqrt(m)
        return m * m

    @staticmethod
    def top_of(m, k):
        """(row max, top-k od values and indices, od rows) of a D² block `m`."""
        import tensorflow as tf

        mx = tf.reduce_max(m, axis=1)
        od = m / mx[:, None]
        top = tf.math.top_k(tf.negative(od), k=k, sorted=True)
        return mx.numpy(), -top.values.numpy(), top.indices.numpy(), od

    def first_pass(self, s, e, k):
        """(row max of D², top-k od values and indices, od rows) for rows s..e of od."""
        return self.top_of(self.square_block(s, e), k)

    def pairs(self, i, j):
        out = np.empty(len(i), dtype=np.float32)
        for a in range(0, len(i), _PAIR_CHUNK):
            ii, jj = i[a : a + _PAIR_CHUNK], j[a : a + _PAIR_CHUNK]
            out[a : a + len(ii)] = pair_distances(self.x[ii], self._sq(ii), self.x[jj], self._sq(jj), self.metric)
        return np.multiply(out, out, out=out)


class _KnnRows(_FeatureRows):
    """`_FeatureRows` whose gallery rows take their neighbours from faiss (`knn`).

    Query rows are dense (exact top-k and row maximum, and the q×g part of od the output
    needs); they also give each gallery item its maximum over the queries. A gallery
    row's neighbours are the k + margin candidates of `knn.NeighbourIndex` with their
    D² (`distance_matrix` arithmetic), sorted with ties by lower index; its maximum is the
    largest of that over the queries, over its candidates and to its farthest item found.
    """

    def __init__(self, feats, metric, nq, exact, nlist=None, nprobe=None):
        super().__init__(feats, metric)
        self.nq, self.exact, self.nlist, self.nprobe = nq, exact, nlist, nprobe
        self.col_max = np.zeros(self.n - nq, np.float32)
        self._cand = None

    def first_pass(self, s, e, k):
        import tensorflow as tf

        if e <= self.nq:
            m = self.square_block(s, e)
            np.maximum(self.col_max, tf.reduce_max(m[:, self.nq :], axis=0).numpy(), out=self.col_max)
            return self.top_of(m, k)
        if self._cand is None:
            self._search(k)
        g = slice(s - self.nq, e - self.nq)
        cand, d2 = self._cand[g], self._cand_d2[g]
        cand = np.where(cand >= 0, cand, np.arange(s, e)[:, None])  # missing: inf
        order = np.lexsort((cand, d2), axis=-1)
        cand = np.take_along_axis(cand, order, axis=1)[:, :k]
        d2 = np.take_along_axis(d2, order, axis=1)[:, :k]
        mx = np.maximum(self.col_max[g], self._far_d2[g])
        mx = np.maximum(mx, np.where(np.isfinite(d2), d2, 0.0).max(axis=1))
        return mx, d2 / mx[:, None], cand.astype(np.int32), None

    def _search(self, k):
        g = np.arange(self.nq, self.n)
        opts = dict(metric=self.metric, exact=self.exact, nlist=self.nlist, nprobe=self.nprobe)
        index = knn.NeighbourIndex(self.x, **opts)
        self._cand, dist = index.nearest(g, k + max(16, k // 2))
        self._cand_d2 = np.square(dist)
        self._far_d2 = np.square(index.farthest(g)[1])


class _ExactRows(_FeatureRows):
    """`_FeatureRows` whose pass 1 is `knn.exact_neighbours`: exact, without TensorFlow.

    The search keeps k + 1 neighbours by (D², index), re-sorted here by (od, index). Dividing by
    the row maximum can merge distinct D² into one od; where that may let an item beyond the
    kept ones tie the k-th and precede it (`_division_ties`), the row is recomputed whole.
    """

    def neighbours(self, nq, k, block_size):
        """(rank, near, row_max, out) as `_first_pass` returns them."""
        n = self.n
        out = np.empty((nq, n - nq), dtype=np.float32)

        def keep_query_rows(s, e, d2):  # d2: rows s..e to items s..
            if s < nq:
                out[s : min(e, nq)] = d2[: min(e, nq) - s, nq - s :]

        kk = min(k + 1, n)
        rank, d2, row_max = knn.exact_neighbours(self.x, self.x_sq, self.metric, kk, block_size, keep_query_rows)
        _check_row_max(row_max, 0)
        near = d2 / row_max[:, None]
        unsafe = _division_ties(d2, near, row_max) if kk > k else np.zeros(n, bool)
        order = np.lexsort((rank, near))
        rank, near = np.take_along_axis(rank, order, axis=1), np.take_along_axis(near, order, axis=1)
        for i in np.flatnonzero(unsafe):
            rank[i, :k], near[i, :k] = self._whole_row(i, row_max[i], k)
        for s, e in _blocks(nq, max(1, _ROW_BUDGET // max(1, n - nq))):
            out[s:e] /= row_max[s:e, None]
        return rank[:, :k], near[:, :k], row_max, out

    def _whole_row(self, i, mx, k):
        """(top-k indices, od) of row i from its n distances, ties by the lower index."""
        sq = None if self.x_sq is None else self.x_sq[i : i + 1]
        d = distance_block(self.x[i : i + 1], sq, self.x, self.x_sq, self.metric)[0]
        od = d * d / mx
        top = np.argsort(od, kind="stable")[:k]
        return top, od[top]


def _division_ties(d2, od, row_max):
    """Rows whose top k = d2.shape[1] − 1 by (od, index) may differ from the kept ones by (D², index).

    Rows of `d2` are ascending by (D², index), od = d2 / row_max. An item not kept has D² >= the
    last kept one, so od >= the largest kept od W. It can only enter the top k if the k-th od is W
    and either a kept item of od W has a smaller D² than the last (the division merged them) or the
    next float above the last D² also divides to W (an unkept larger D² could too).
    """
    k = d2.shape[1] - 1
    last_d2, w = d2[:, -1], od[:, -1]
    kth = np.sort(od, axis=1)[:, k - 1]
    merged = ((od == w[:, None]) & (d2 != last_d2[:, None])).any(axis=1)
    next_same = np.nextafter(last_d2, np.float32(np.inf)) / row_max == w
    return (kth == w) & (merged | next_same)


class _MatrixRows:
    """Squared distances from q_g, q_q, g_g: row i of od is column i of D."""

    def __init__(self, q_g, q_q, g_g):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.nq = q_g.shape[0]
        self.n = q_g.shape[0] + q_g.shape[1]

    @staticmethod
    def _square(x):
        return np.square(x).astype(np.float32, copy=False)

    def rows(self, s, e):
        nq = self.nq
        if e <= nq:
            blk = np.concatenate([self.q_q[:, s:e].T, self.q_g[s:e]], axis=1)
        else:  # callers never straddle nq
            blk = np.concatenate([self.q_g[:, s - nq : e - nq].T, self.g_g[:, s - nq : e - nq].T], axis=1)
        return self._square(blk)

    def first_pass(self, s, e, k):
        od = self.rows(s, e)
        mx = od.max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            od /= mx[:, None]
        top = _topk(od, k)
        return mx, np.take_along_axis(od, top, axis=1), top, od

    def pairs(self, i, j):
        nq = self.nq
        vals = np.empty(len(i), dtype=self.q_g.dtype)
        iq, jq = i < nq, j < nq
        m = iq & jq
        vals[m] = self.q_q[j[m], i[m]]
        m = iq & ~jq
        vals[m] = self.q_g[i[m], j[m] - nq]
        m = ~iq & jq
        vals[m] = self.q_g[j[m], i[m] - nq]
        m = ~iq & ~jq
        vals[m] = self.g_g[j[m] - nq, i[m] - nq]
        return self._square(vals)


# ------------------------------------------------------------------------ helpers
def _blocks(n, size, split=None):
    """(start, stop) pairs covering range(n), never straddling `split`."""
    edges = [0, n] if split in (None, 0, n) else [0, split, n]
    for lo, hi in zip(edges[:-1], edges[1:]):
        for s in range(lo, hi, size):
            yield s, min(s + size, hi)


def _topk(od, k):
    """Indices of the k smallest entries of each row, ascending, ties by lower index."""
    if k >= od.shape[1]:
        return np.argsort(od, axis=1, kind="stable").astype(np.int32)
    import tensorflow as tf  # top_k: O(N) per row; documented to put the lower index first on ties

    return tf.math.top_k(tf.negative(tf.convert_to_tensor(od)), k=k, sorted=True).indices.numpy()


def _check_row_max(mx, offset):
    """Raises unless every item's maximum squared distance (`mx`, items offset..) is finite and positive."""
    bad = ~(np.isfinite(mx) & (mx > 0))
    if bad.any():
        raise ValueError(
            f"Re-ranking needs finite distances with a positive maximum per item; item "
            f"{offset + int(np.nonzero(bad)[0][0])} has max squared distance {mx[bad][0]}."
        )


def _expand_ranges(starts, lens):
    """Concatenation of range(starts[t], starts[t] + lens[t]) for all t."""
    total = int(lens.sum())
    offs = np.cumsum(lens) - lens
    return np.repeat(starts - offs, lens) + np.arange(total, dtype=np.int64)


# ---------------------------------------------------------------------- algorithm
def _check_params(k1, k2, lambda_value, block_size):
    lam = float(lambda_value)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"`lambda_value` must be in [0, 1]. Received: lambda_value={lambda_value!r}")
    block_size = None if block_size is None else check_int(block_size, "block_size")
    return check_int(k1, "k1"), check_int(k2, "k2"), lam, block_size


def _k_reciprocal(rows, nq, ng, k1, k2, lambda_value, block_size):
    """Zhong et al.'s k-reciprocal re-ranking of the q×g distances (see the module docstring)."""
    k1, k2, lam, block_size = _check_params(k1, k2, lambda_value, block_size)
    n = nq + ng
    k_fw = min(k1 + 1, n)
    k_half = min(int(np.around(k1 / 2.0)) + 1, n)
    k_qe = min(k2, n)
    k_keep = min(n, max(k_fw, k_qe, _KEEP_FACTOR * k_fw))
    if isinstance(rows, _ExactRows):
        rank, near, row_max, out = rows.neighbours(nq, k_keep, block_size)
    else:
        rank, near, row_max, out = _first_pass(rows, nq, n, k_keep, block_size or max(1, _ROW_BUDGET // n))
    step = block_size or 2048
    indptr, v_cols, v_vals = _expanded_sets(rows, rank, near, row_max, n, k_fw, k_half, step)
    if k2 != 1:
        indptr, v_cols, v_vals = _query_expansion(rank, indptr, v_cols, v_vals, n, k_qe, step)
    return _jaccard_blend(indptr, v_cols, v_vals, nq, ng, out, lam, block_size)


def _first_pass(rows, nq, n, k_keep, step):
    """od rows → top-k_keep neighbours (and their od), row maxima, and the q×g part of od."""
    ng = n - nq
    rank = np.empty((n, k_keep), dtype=np.int32)
    near = np.empty((n, k_keep), dtype=np.float32)
    row_max = np.empty(n, dtype=np.float32)
    out = np.empty((nq, ng), dtype=np.float32)
    for s, e in _blocks(n, step, split=nq):
        mx, near[s:e], top, od = rows.first_pass(s, e, k_keep)
        _check_row_max(mx, s)
        row_max[s:e] = mx
        rank[s:e] = top
        if od is not None and e <= nq:
            out[s:e] = np.asarray(od[:, nq:])
        del od
    return rank, near, row_max, out


def _expanded_sets(rows, rank, near, row_max, n, k_fw, k_half, step):
    """Expanded k-reciprocal sets and their exp(−od) weights, as CSR rows of V: (indptr, cols, vals)."""
    fw, half = rank[:, :k_fw], rank[:, :k_half]
    # od of (item, kept neighbour) pairs, looked up by the key item * n + neighbour;
    # the weights of the few expansion members beyond the kept neighbours are recomputed.
    near_keys = (np.arange(n, dtype=np.int64)[:, None] * n + rank).ravel()
    order = np.argsort(near_keys)
    near_keys, near = near_keys[order], near.ravel()[order]
    del order
    # k-reciprocal sets over the top round(k1/2)+1, for every item (candidates).
    half_rec = np.empty((n, k_half), dtype=bool)
    for s, e in _blocks(n, step):
        half_rec[s:e] = (rank[half[s:e], :k_half] == np.arange(s, e)[:, None, None]).any(-1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    v_cols, v_vals = [], []
    for s, e in _blocks(n, step):
        r, cols = _expanded_block(rank, fw, half, half_rec, s, e, n, k_fw)
        gi = s + r
        want = gi * n + cols
        pos = np.minimum(np.searchsorted(near_keys, want), len(near_keys) - 1)
        od = near[pos]
        miss = near_keys[pos] != want
        if miss.any():
            od[miss] = rows.pairs(gi[miss], cols[miss]) / row_max[gi[miss]]
        w = np.exp(-od)
        sums = np.bincount(r, weights=w, minlength=e - s).astype(np.float32)
        v_vals.append(w / sums[r])
        v_cols.append(cols.astype(np.int32))
        indptr[s + 1 : e + 1] = np.bincount(r, minlength=e - s)
    return np.cumsum(indptr), np.concatenate(v_cols), np.concatenate(v_vals)


def _expanded_block(rank, fw, half, half_rec, s, e, n, k_fw):
    """(row in block, member) pairs of the expanded k-reciprocal sets of items [s, e), sorted, unique."""
    b = e - s
    f = fw[s:e]  # [b, k_fw]
    rec = (rank[f, :k_fw] == np.arange(s, e)[:, None, None]).any(-1)  # [b, k_fw]
    cand = half[f]  # [b, k_fw, k_half]: candidates' half neighbour lists
    cand_rec = half_rec[f]  # which of them are reciprocal (the candidate's set)
    in_r = ((cand[..., None] == f[:, None, None, :]) & rec[:, None, None, :]).any(-1)
    overlap = (in_r & cand_rec).sum(-1)
    take = rec & (overlap > (2.0 / 3.0) * cand_rec.sum(-1))
    ent = np.concatenate(
        [np.where(rec, f, n), np.where(take[..., None] & cand_rec, cand, n).reshape(b, -1)],
        axis=1,
    )
    ent.sort(axis=1)
    keep = ent < n
    keep[:, 1:] &= ent[:, 1:] != ent[:, :-1]
    r, c = np.nonzero(keep)
    return r, ent[r, c].astype(np.int64)


def _query_expansion(rank, indptr, v_cols, v_vals, n, k_qe, step):
    """V[i] ← mean of V over the top k2 neighbours of i (CSR in, CSR out)."""
    qe_ptr = np.zeros(n + 1, dtype=np.int64)
    qe_cols, qe_vals = [], []
    for s, e in _blocks(n, step):
        src = rank[s:e, :k_qe].ravel().astype(np.int64)
        lens = indptr[src + 1] - indptr[src]
        p = _expand_ranges(indptr[src], lens)
        row = np.repeat(np.arange(e - s, dtype=np.int64).repeat(k_qe), lens)
        keys, inv = np.unique(row * n + v_cols[p], return_inverse=True)
        sums = np.bincount(inv, weights=v_vals[p])
        qe_vals.append((sums / k_qe).astype(np.float32))
        qe_cols.append((keys % n).astype(np.int32))
        qe_ptr[s + 1 : e + 1] = np.bincount(keys // n, minlength=e - s)
    return np.cumsum(qe_ptr), np.concatenate(qe_cols), np.concatenate(qe_vals)


def _jaccard_blend(indptr, v_cols, v_vals, nq, ng, out, lam, block_size):
    """Jaccard distance of the query rows of V to its gallery rows, blended into `out` (the q×g od)."""
    n = nq + ng
    # Inverted index over the gallery rows of V: for each column, (gallery row, value).
    g0 = indptr[nq]
    g_cols = v_cols[g0:]
    order = np.argsort(g_cols, kind="stable")
    inv_rows = np.repeat(np.arange(ng, dtype=np.int32), np.diff(indptr[nq:]))[order]
    inv_vals = v_vals[g0:][order]
    col_len = np.bincount(g_cols, minlength=n)
    col_ptr = np.concatenate([[0], np.cumsum(col_len)])
    q_cols = v_cols[:g0]
    q_rows = np.repeat(np.arange(nq, dtype=np.int64), np.diff(indptr[: nq + 1]))
    terms = np.bincount(q_rows, weights=col_len[q_cols], minlength=nq)
    q_step = block_size or max(1, _TERM_BUDGET // max(ng, 1))
    s = 0
    while s < nq:
        # as many queries as fit both budgets (at least one)
        cum = np.cumsum(terms[s : s + q_step])
        e = s + max(1, int(np.searchsorted(cum, _TERM_BUDGET, side="right")))
        a, z = indptr[s], indptr[e]
        cols, vals = q_cols[a:z], v_vals[a:z]
        lens = col_len[cols]
        p = _expand_ranges(col_ptr[cols], lens)
        mins = np.minimum(np.repeat(vals, lens), inv_vals[p])
        flat = np.repeat(q_rows[a:z] - s, lens) * ng
        flat += inv_rows[p]
        t_min = np.bincount(flat, weights=mins, minlength=(e - s) * ng)
        t_min = t_min.astype(np.float32).reshape(e - s, ng)
        jaccard = np.float32(1.0) - t_min / (np.float32(2.0) - t_min)
        out[s:e] = jaccard * (1.0 - lam) + out[s:e] * lam
        s = e
    return out


# ------------------------------------------------------------------------ public
def re_rank_features(
    q_feats,
    g_feats,
    metric="euclidean",
    k1=20,
    k2=6,
    lambda_value=0.3,
    block_size=None,
    knn_mode="auto",
    nlist=None,
    nprobe=None,
):
    """k-reciprocal re-ranking from embeddings.

    With the default `knn_mode` ("auto" = "exact") or "dense" this equals
    `re_rank_distances(distance_matrix(q, g, metric), distance_matrix(q, q, metric),
    distance_matrix(g, g, metric), ...)` up to float rounding of the products, without
    building the N×N matrices; "flat" (faiss exact search) gives the same; "ivf" takes the
    gallery items' neighbours and farthest items from a faiss IVF index (`knn`), approximate
    unless nprobe = nlist.

    Args:
        q_feats: float [num_query, dim].
        g_feats: float [num_gallery, dim].
        metric: "euclidean", "sqeuclidean" or "cosine"; like the classic code the
            distances are squared before use.
        k1, k2, lambda_value: the paper's parameters (20, 6, 0.3).
        block_size: rows per block (default: from a memory budget: 2 × 128 MiB of products
            for "exact", ~32 MiB for the others).
        knn_mode: "exact" (exact k-NN in strips, any size), "auto" (= "exact"; "dense" where
            numba is not installed), "dense" (exact, in TensorFlow), "flat" (faiss exact) or
            "ivf" (faiss inverted lists, approximate).
        nlist, nprobe: IVF lists and lists probed (default: `knn.ivf_sizes`, 4√N and nlist / 16).

    Returns:
        np.float32 [num_query, num_gallery] re-ranked distances.
    """
    check_metric(metric)
    if knn_mode not in knn.KNN_MODES:
        raise ValueError(f"`knn_mode` must be one of {knn.KNN_MODES}. Received: knn_mode={knn_mode!r}")
    q, g = as_feature_pair(q_feats, g_feats)
    if len(q) == 0 or len(g) == 0:
        raise ValueError(f"Empty query or gallery: q_feats.shape={q.shape}, g_feats.shape={g.shape}")
    feats = np.concatenate([q, g])
    if knn_mode == "auto":
        knn_mode = "exact" if numba_available() else "dense"
    if knn_mode == "dense":
        rows = _FeatureRows(feats, metric)
    elif knn_mode == "exact":
        rows = _ExactRows(feats, metric)
    else:
        rows = _KnnRows(feats, metric, len(q), exact=knn_mode == "flat", nlist=nlist, nprobe=nprobe)
    return _k_reciprocal(rows, len(q), len(g), k1, k2, lambda_value, block_size)


def _as_dist(x, name, shape):
    """`x` as a finite numeric matrix of exactly `shape` (`distance.as_matrix`, then its values)."""
    x = as_matrix(x, name, f"{shape[0]}×{shape[1]}", rows=shape[0], columns=shape[1])
    if not np.isfinite(x).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return x


def re_rank_distances(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3, block_size=None):
    """k-reciprocal re-ranking with the classic signature (distance matrices in).

    Args:
        q_g_dist: [num_query, num_gallery] distances.
        q_q_dist: [num_query, num_query].
        g_g_dist: [num_gallery, num_gallery].
        k1, k2, lambda_value: the paper's parameters (20, 6, 0.3).
        block_size: rows per block (default: from a ~32 MiB budget).

    Returns:
        np.float32 [num_query, num_gallery]; the classic code's output, ties broken by
        the lower index. No further N×N matrix is built (the inputs already are one).
    """
    shape = "non-empty 2-D [num_query, num_gallery]"
    q_g = as_matrix(q_g_dist, "q_g_dist", shape)
    if 0 in q_g.shape:
        raise ValueError(f"`q_g_dist` must be a {shape} matrix. Received shape: {q_g.shape}")
    nq, ng = q_g.shape
    q_g = _as_dist(q_g, "q_g_dist", (nq, ng))
    q_q = _as_dist(q_q_dist, "q_q_dist", (nq, nq))
    g_g = _as_dist(g_g_dist, "g_g_dist", (ng, ng))
    dtype = np.result_type(q_g, q_q, g_g)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    rows = _MatrixRows(*(x.astype(dtype, copy=False) for x in (q_g, q_q, g_g)))
    return _k_reciprocal(rows, nq, ng, k1, k2, lambda_value, block_size)

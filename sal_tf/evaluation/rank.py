"""CMC, mAP and mINP for the single-query Market-1501 / DukeMTMC-reID protocol.

Conventions (torchreid `eval_market1501`, fast-reid `evaluate_py`, Market `compute_AP.m`):

* per query, gallery items with the same pid **and** the same camera are removed,
  and so are junk items (pid −1); distractors (pid 0) stay, as ordinary negatives;
* the remaining items are ranked by ascending distance, ties broken by the lower
  gallery index (a stable sort);
* a query with no remaining match is skipped (left out of CMC, mAP and mINP);
* CMC_i[k] = 1 if the first match is at 0-based position <= k (a list shorter than
  `max_rank` is fine: the curve stays at 1 after the first match);
* AP (`ap="noninterpolated"`, torchreid/fast-reid): (1/n_rel) Σ_hits hits_so_far / position
  (1-based), over the whole remaining list;
* AP (`ap="official"`, Market `compute_AP.m`): the trapezoid rule, for the i-th hit at
  0-based position n: (1/n_rel) · (old_precision + i/(n+1)) / 2, with
  old_precision = (i−1)/n, or 1 when n = 0. It reads ~1 point lower;
* INP_i = n_rel / (1-based position of the last match) (fast-reid's mINP).

Two exact methods give bit-for-bit the same hit positions, hence the same scores:
`method="count"` (the default when numba is installed) counts each match's rank in
one pass over the row without sorting (`rank_count`), on one thread per core;
`method="sort"` (the reference) sorts, per row, only the items ranked up to the last
match, as unique 64-bit keys (row, distance bits, gallery index, hit flag), a stable
order without a stable sort.
"""

import dataclasses

import numpy as np

from sal_tf.evaluation.distance import as_matrix
from sal_tf.evaluation.rank_count import HitCounter, numba_available
from sal_tf.utils.checks import check_int
from sal_tf.utils.person_ids import JUNK_PID

AP_MODES = ("noninterpolated", "official")
RANK_METHODS = ("auto", "count", "sort")


@dataclasses.dataclass
class RankResult:
    """Results of `evaluate_rank`; rates are fractions in [0, 1].

    Attributes:
        cmc: float64 [max_rank], cmc[k] = fraction of valid queries matched within rank k+1.
        mAP: mean AP over valid queries.
        mINP: mean INP over valid queries.
        all_AP: float64 [num_valid_queries], AP per valid query (query order).
        all_INP: float64 [num_valid_queries].
        num_valid_queries: queries with at least one remaining match.
        valid: bool [num_query], which queries were valid.
        ap: the AP convention used ("noninterpolated" or "official").
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    all_AP: np.ndarray
    all_INP: np.ndarray
    num_valid_queries: int
    valid: np.ndarray
    ap: str = "noninterpolated"

    def rank(self, k):
        """Rank-k accuracy (1-based k)."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank k must be in [1, {len(self.cmc)}]. Received: k={k}")
        return float(self.cmc[k - 1])

    def to_dict(self, ranks=(1, 5, 10, 20)):
        """Scalars for logs / TensorBoard: mAP, mINP, rank{k}, num_valid_queries."""
        out = {"mAP": float(self.mAP), "mINP": float(self.mINP)}
        for k in ranks:
            if k <= len(self.cmc):
                out[f"rank{k}"] = self.rank(k)
        out["num_valid_queries"] = int(self.num_valid_queries)
        return out

    def format_table(self, name=None, ranks=(1, 5, 10)):
        """A Markdown table in percent: | name | mAP | mINP | Rank-1 | Rank-5 | Rank-10 |."""
        ranks = [k for k in ranks if k <= len(self.cmc)]
        head = ["mAP", "mINP"] + [f"Rank-{k}" for k in ranks]
        vals = [self.mAP, self.mINP] + [self.rank(k) for k in ranks]
        if name is not None:
            head = ["dataset"] + head
        cells = [f"{100.0 * v:.2f}" for v in vals]
        if name is not None:
            cells = [str(name)] + cells
        widths = [max(len(h), len(c)) for h, c in zip(head, cells)]

        def row(xs):
            return "| " + " | ".join(x.rjust(w) for x, w in zip(xs, widths)) + " |"

        sep = "|" + "|".join(":" + "-" * (w + 1) for w in widths) + "|"
        return "\n".join([row(head), sep, row(cells)])


def format_rank_table(result, name=None, ranks=(1, 5, 10)):
    """`result.format_table(...)` as a function: one Markdown row of a `RankResult` in percent."""
    return result.format_table(name=name, ranks=ranks)


def check_ids(x, name, n=None):
    """`x` as int64 [n] (a 1-D integer array), or a ValueError naming `name`."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    x = np.asarray(x)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"`{name}` must be a 1-D integer array. Received dtype={x.dtype}, shape={x.shape}")
    if n is not None and len(x) != n:
        raise ValueError(
            f"`{name}` must have {n} entries (one per distmat "
            f"{'row' if name.startswith('q') else 'column'}). Received: {len(x)}"
        )
    return x.astype(np.int64)


def _float32_keys(d):
    """Order-preserving uint32 image of float32 `d` (−0.0 and +0.0 map to the same key)."""
    u = (d + np.float32(0.0)).view(np.uint32)  # -0.0 + 0.0 = +0.0
    mask = (u >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
    return u ^ mask


def _hit_positions(d, hit, keep):
    """Rows and 0-based positions (among kept items, stable order) of every hit.

    Only items up to each row's last hit can affect CMC/AP/INP, so only those are
    sorted. Returns (rows, positions), rows ascending, positions ascending per row.
    """
    b, ng = d.shape
    last = np.where(hit, d, -np.inf).max(axis=1)  # -inf: no hit, nothing selected
    r, c = np.nonzero(keep & (d <= last[:, None].astype(d.dtype)))
    d_sel, h_sel = d[r, c], hit[r, c]
    c_bits = max(1, int(ng - 1).bit_length())
    if d.dtype == np.float32 and (b - 1).bit_length() + c_bits <= 31:
        # unique keys (row, distance, index, hit) -> a plain sort is a stable order
        key = r.astype(np.uint64) << np.uint64(33 + c_bits)
        key |= _float32_keys(d_sel).astype(np.uint64) << np.uint64(c_bits + 1)
        key |= c.astype(np.uint64) << np.uint64(1)
        key |= h_sel
        key.sort()
        idx = np.nonzero(key & np.uint64(1))[0]
        rows = (key[idx] >> np.uint64(33 + c_bits)).astype(np.int64)
    else:
        order = np.lexsort((d_sel, r))  # stable: equal distances keep index order
        idx = np.nonzero(h_sel[order])[0]
        rows = r[order][idx]
    counts = np.bincount(r, minlength=b)
    starts = np.cumsum(counts) - counts
    return rows, idx - starts[rows]


def sorted_block_hits(d, q_pids, g_pids, q_camids, g_camids):
    """(rows, positions, first NaN row or -1) of a block `d` [b, num_gallery] by the sorted path."""
    if np.isnan(d).any():
        return None, None, int(np.nonzero(np.isnan(d).any(axis=1))[0][0])
    same_pid = g_pids[None, :] == q_pids[:, None]
    same_cam = g_camids[None, :] == q_camids[:, None]
    keep = ~(same_pid & same_cam) & (g_pids != JUNK_PID)[None, :]
    hit = same_pid & keep
    r, pos = _hit_positions(d, hit, keep)
    return r, pos, -1


def check_options(max_rank, ap, method):
    """Validates the options shared by `evaluate_rank` and `evaluate_features`."""
    if ap not in AP_MODES:
        raise ValueError(f"`ap` must be one of {AP_MODES}. Received: ap={ap!r}")
    check_int(max_rank, "max_rank")
    if method not in RANK_METHODS:
        raise ValueError(f"`method` must be one of {RANK_METHODS}. Received: method={method!r}")
    if method == "auto":
        method = "count" if numba_available() else "sort"
    return method


def check_labels(nq, ng, q_pids, g_pids, q_camids, g_camids):
    """The four label arrays as int64, checked against `nq` query and `ng` gallery items."""
    return (
        check_ids(q_pids, "q_pids", nq),
        check_ids(g_pids, "g_pids", ng),
        check_ids(q_camids, "q_camids", nq),
        check_ids(g_camids, "g_camids", ng),
    )


class HitBlocks:
    """Hit positions of consecutive blocks of query rows, by `method` ("count" or "sort").

    `add(d, s)` ranks rows s.. s+len(d) (float32/float64 C-contiguous); `result(...)`
    turns everything added into a `RankResult`.
    """

    def __init__(self, q_pids, g_pids, q_camids, g_camids, method, name="distmat"):
        self.labels = (q_pids, g_pids, q_camids, g_camids)
        self.counter = HitCounter(g_pids, g_camids) if method == "count" else None
        self.name = name
        self.rows, self.pos = [], []

    def add(self, d, s):
        q_pids, g_pids, q_camids, g_camids = self.labels
        e = s + d.shape[0]
        if self.counter is not None:
            r, pos, bad = self.counter.positions(d, q_pids[s:e], q_camids[s:e])
        else:
            r, pos, bad = sorted_block_hits(d, q_pids[s:e], g_pids, q_camids[s:e], g_camids)
        if bad >= 0:
            raise ValueError(f"`{self.name}` contains NaN (first in query row {s + bad}).")
        self.rows.append(r + s)
        self.pos.append(pos)

    def result(self, max_rank, ap):
        nq = len(self.labels[0])
        return result_from_hits(np.concatenate(self.rows), np.concatenate(self.pos), nq, max_rank, ap)


def result_from_hits(r, pos, nq, max_rank, ap):
    """`RankResult` from every hit's (query row, 0-based position); rows ascending,
    positions ascending within a row."""
    counts = np.bincount(r, minlength=nq)
    starts = np.cumsum(counts) - counts
    i = np.arange(len(r)) - starts[r] + 1  # 1-based hit count within the row
    prec = i / (pos + 1.0)
    if ap == "official":
        old = np.where(pos == 0, 1.0, (i - 1) / np.maximum(pos, 1).astype(np.float64))
        terms = (old + prec) / 2.0
    else:
        terms = prec
    valid = counts > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            "No valid query: no query has a gallery item with the same pid from another "
            "camera (junk pid -1 excluded). Check q_pids/g_pids and q_camids/g_camids."
        )
    n_rel = counts[valid]
    all_ap = np.bincount(r, weights=terms, minlength=nq)[valid] / n_rel
    all_inp = n_rel / (pos[starts[valid] + n_rel - 1] + 1.0)
    first_v = pos[starts[valid]]
    hist = np.bincount(np.minimum(first_v, max_rank), minlength=max_rank + 1)[:max_rank]
    cmc = np.cumsum(hist) / float(num_valid)
    return RankResult(
        cmc=cmc,
        mAP=float(all_ap.mean()),
        mINP=float(all_inp.mean()),
        all_AP=all_ap,
        all_INP=all_inp,
        num_valid_queries=num_valid,
        valid=valid,
        ap=ap,
    )


def evaluate_rank(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank=50,
    ap="noninterpolated",
    block_size=None,
    method="auto",
):
    """Single-query CMC / mAP / mINP with the Market-1501 conventions (module docstring).

    Args:
        distmat: float [num_query, num_gallery] distances (smaller = more similar).
            float16/float32 are ranked as float32, anything else as float64.
        q_pids, g_pids: int [num_query] / [num_gallery] person ids (−1 junk, 0 distractor).
        q_camids, g_camids: int camera ids.
        max_rank: length of the CMC curve.
        ap: "noninterpolated" (torchreid/fast-reid) or "official" (Market `compute_AP.m`).
        block_size: queries per block (default: the whole matrix for the counting path when
            no conversion is needed, else ~4 M distances per block).
        method: "count" (sort-free, `rank_count`, numba, one thread per core), "sort" (the
            reference: sorts each row up to its last match) or "auto" (count when numba is
            installed). Both give bit-for-bit the same result.

    Returns:
        `RankResult`.

    Raises:
        ValueError: on malformed input, NaN distances, or when no query has a match.
    """
    method = check_options(max_rank, ap, method)
    distmat = as_matrix(distmat, "distmat", "2-D [num_query, num_gallery]")
    nq, ng = distmat.shape
    labels = check_labels(nq, ng, q_pids, g_pids, q_camids, g_camids)
    if ng == 0 or nq == 0:
        raise ValueError(f"`distmat` is empty. Received shape: {distmat.shape}")
    dtype = np.float32 if distmat.dtype in (np.float16, np.float32) else np.float64
    if block_size is None:
        ready = distmat.dtype == dtype and distmat.flags.c_contiguous
        block_size = nq if (method == "count" and ready) else max(1, (4 << 20) // ng)
    elif int(block_size) < 1:
        raise ValueError(f"`block_size` must be >= 1. Received: block_size={block_size}")
    block_size = int(block_size)
    hits = HitBlocks(*labels, method=method)
    for s in range(0, nq, block_size):
        hits.add(np.ascontiguousarray(distmat[s : s + block_size], dtype=dtype), s)
    return hits.result(max_rank, ap)

"""The numba kernel of `rank_count` (imported only when the counting path runs).

`count_rows` fills, for query rows r0..r1 of a distance block, the 0-based position of
every hit among the row's kept items (algorithm in `rank_count`). The row is read in
chunks of `CHUNK` items: a branch-free (SIMD) test whether any of them is <= the last
hit's distance or NaN lets most chunks be skipped; the others are walked item by item.
Compiled on first use and cached on disk (`cache=True`).
"""

import numba
import numpy as np

CHUNK = 16  # items tested at once (one AVX-512 register of float32)
LINEAR_HITS = 32  # up to this many hits, an item's bucket is counted, not searched


@numba.njit(nogil=True, cache=True)
def bucket(sd, sj, h, x, j):
    """Number of hits whose key (sd, sj) is <= (x, j): a branch-free count over a few hits,
    a binary search over many."""
    if h <= LINEAR_HITS:
        n = 0
        for m in range(h):
            n += (sd[m] < x) | ((sd[m] == x) & (sj[m] <= j))
        return n
    lo, hi = 0, h
    while lo < hi:
        mid = (lo + hi) >> 1
        if sd[mid] < x or (sd[mid] == x and sj[mid] <= j):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(nogil=True, cache=True, inline="always")
def walk(row, ok, first, last, c, e, buf, k):
    """Items c..e of a row, branch-free: appends the kept ones within [first, last] to
    `buf` (from k); returns (new k, kept items below first, any NaN)."""
    below, nan = 0, False
    for j in range(c, e):
        x = row[j]
        keep = ok[j] != 0
        buf[k] = j
        k += (x >= first) & (x <= last) & keep
        below += (x < first) & keep
        nan |= x != x
    return k, below, nan


@numba.njit(nogil=True, cache=True)
def count_row(row, ok, sd, sj, h, cnt, buf):
    """All kept items of a row into their buckets (`cnt`); returns (items below the first
    hit, whether the row holds a NaN). `buf`: int64 scratch of len(row) + 1."""
    first, last = sd[0], sd[h - 1]
    ng = row.shape[0]
    below, nan, k = 0, False, 0
    c = 0
    while c + CHUNK <= ng:
        near = np.uint8(0)
        for j in range(CHUNK):  # a fixed trip count: one vector compare
            near |= np.uint8(not (row[c + j] > last))  # <= last, or NaN: one unordered compare
        if near:
            k, b, n = walk(row, ok, first, last, c, c + CHUNK, buf, k)
            below, nan = below + b, nan | n
        c += CHUNK
    k, b, n = walk(row, ok, first, last, c, ng, buf, k)
    for t in range(k):
        j = buf[t]
        cnt[bucket(sd, sj, h, row[j], j)] += 1
    return below + b, nan | n


@numba.njit(nogil=True, cache=True)
def count_rows(d, r0, r1, q_cams, lo, hi, g_order, g_cams, g_ok, ptr, pos, n_hits, has_nan):
    """Rows r0..r1 of `d`: hit positions into pos[ptr[r]:], counts into n_hits, NaN flags."""
    ng = d.shape[1]
    buf = np.empty(ng + 1, np.int64)
    for r in range(r0, r1):
        row = d[r]
        m = hi[r] - lo[r]
        hd, hj = np.empty(m, d.dtype), np.empty(m, np.int64)
        rd, rj = np.empty(m, d.dtype), np.empty(m, np.int64)
        h, nr = 0, 0
        for t in range(lo[r], hi[r]):  # same pid: hits (other camera) and removed (same camera)
            j = g_order[t]
            if not g_ok[j]:
                continue
            if g_cams[j] != q_cams[r]:
                hd[h], hj[h] = row[j], j
                h += 1
            else:
                rd[nr], rj[nr] = row[j], j
                nr += 1
        n_hits[r] = h
        if h == 0:
            for j in range(ng):
                if row[j] != row[j]:
                    has_nan[r] = True
                    break
            continue
        order = np.argsort(hd[:h], kind="mergesort")  # stable: hj ascending within ties
        sd, sj = hd[:h][order], hj[:h][order]
        cnt = np.zeros(h + 1, np.int64)
        below, nan = count_row(row, g_ok, sd, sj, h, cnt, buf)
        has_nan[r] = nan
        cnt[0] += below
        for t in range(nr):
            cnt[bucket(sd, sj, h, rd[t], rj[t])] -= 1
        run = 0
        for t in range(h):
            run += cnt[t]
            pos[ptr[r] + t] = run

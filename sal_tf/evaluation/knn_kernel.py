"""The numba kernel of `knn.exact_neighbours` (imported only when that search runs).

`add_strip` takes the products m = x[s:e] @ x[s:].T of one block of rows with every item
from s on and turns them into squared distances in place: the float32 arithmetic of
`distance.distance_block`, then a square (numba does not contract it into FMAs by default).
Each entry (d², j) of row i goes into i's k-best heap and, right of the diagonal square,
(d², i) into j's (D is symmetric, so the strip also serves the items of later blocks); the
rows' maxima are kept too.

A heap entry is one uint64 key, the bits of d² (>= 0, so they order like the floats) above
the item index: comparing keys compares (d², index), so ties go to the lower index. A heap
is a max-heap whose root is its worst key; an entry enters only if its key is below the root,
which after the first few columns is rare. The column updates run over chunks of `CHUNK`
columns so that their heaps stay in cache. Compiled on first use, cached on disk.
"""

import numba
import numpy as np

EUCLIDEAN, SQEUCLIDEAN, COSINE = 0, 1, 2
METRIC_CODES = {"euclidean": EUCLIDEAN, "sqeuclidean": SQEUCLIDEAN, "cosine": COSINE}
EMPTY = np.iinfo(np.uint64).max  # the key of an empty heap slot
CHUNK = 256  # columns whose heaps are updated together


@numba.njit(nogil=True, cache=True, inline="always")
def squared(v, a_sq, b_sq, metric):
    """d² from a product v = a·b, as `distance_block` computes d, then squared."""
    if metric == COSINE:
        v = np.float32(1.0) - v
        v = min(max(v, np.float32(0.0)), np.float32(2.0))
    else:
        v = v * np.float32(-2.0)
        v = v + a_sq
        v = v + b_sq
        v = max(v, np.float32(0.0))
        if metric == EUCLIDEAN:
            v = np.sqrt(v)
    return v * v


@numba.njit(nogil=True, cache=True, inline="always")
def key_of(d2, j):
    """(d², j) as one uint64 that orders like the pair."""
    return (np.uint64(np.float32(d2).view(np.uint32)) << np.uint64(32)) | np.uint64(j)


@numba.njit(nogil=True, cache=True, inline="always")
def push(heaps, r, key):
    """Replaces the root (worst key) of heap `r` by a smaller `key`; returns the new root."""
    k = heaps.shape[1]
    p = 0
    while True:
        c = 2 * p + 1
        if c >= k:
            break
        if c + 1 < k and heaps[r, c + 1] > heaps[r, c]:
            c += 1
        if heaps[r, c] < key:
            break
        heaps[r, p] = heaps[r, c]
        p = c
    heaps[r, p] = key
    return heaps[r, 0]


@numba.njit(nogil=True, cache=True)
def add_strip(m, x_sq, s, metric, heaps, row_max):
    """Merges the strip m = x[s:s+b] @ x[s:].T into the heaps and maxima of its rows and,
    right of the diagonal square, of its columns' items; leaves D² in `m`."""
    b, w = m.shape
    for r in range(b):
        i = s + r
        a_sq = x_sq[i]
        mx = row_max[i]
        for c in range(w):
            d2 = squared(m[r, c], a_sq, x_sq[s + c], metric)
            m[r, c] = d2
            mx = max(mx, d2)
        row_max[i] = mx
        root = heaps[i, 0]
        for c in range(w):
            key = key_of(m[r, c], s + c)
            if key < root:
                root = push(heaps, i, key)
    roots = np.empty(CHUNK, np.uint64)
    maxima = np.empty(CHUNK, np.float32)
    for c0 in range(b, w, CHUNK):
        c1 = min(c0 + CHUNK, w)
        for c in range(c0, c1):
            roots[c - c0] = heaps[s + c, 0]
            maxima[c - c0] = row_max[s + c]
        for r in range(b):
            for c in range(c0, c1):
                d2 = m[r, c]
                maxima[c - c0] = max(maxima[c - c0], d2)
                key = key_of(d2, s + r)
                if key < roots[c - c0]:
                    roots[c - c0] = push(heaps, s + c, key)
        for c in range(c0, c1):
            row_max[s + c] = maxima[c - c0]

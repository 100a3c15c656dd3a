"""Sort-free hit ranks for `evaluate_rank`: the rank of every true match by counting.

CMC, AP and INP need only the 0-based position of each true match ("hit") among a
query's kept gallery items, in the stable order (ascending distance, ties by lower
gallery index). With the hits h_1 < … < h_m sorted by the key (distance, index),

    position(h_t) = #{kept items j : (d_j, j) < (d_{h_t}, h_t)},

so one pass over the row suffices: each kept item with a distance in
[d_{h_1}, d_{h_m}] falls into the bucket "number of hits with a key <= its key"
(a binary search over the few hits), items below d_{h_1} into bucket 0, items above
d_{h_m} are skipped; the prefix sums of the bucket counts are the positions. The hits
and the removed same-pid-same-camera items are found from the gallery grouped by pid
(the removed ones are subtracted from their buckets afterwards); junk (pid −1) is
skipped by a mask. The output is the same (rows, positions) as the sorted path's, so
every score computed from it is bit-for-bit the same.

The kernel (`rank_count_kernel`) is compiled with numba (`nogil`, cached on disk) and
run over blocks of query rows on one thread per core.
"""

import concurrent.futures
import os

import numpy as np

from sal_tf.utils.person_ids import JUNK_PID


def numba_available():
    """Whether numba can be imported (the counting path needs it)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def num_threads():
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _pid_slices(q_pids, g_pids):
    """Gallery indices grouped by pid (ascending index within a pid) and each query's slice."""
    g_order = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[g_order]
    lo = np.searchsorted(sorted_pids, q_pids, side="left")
    hi = np.searchsorted(sorted_pids, q_pids, side="right")
    return g_order.astype(np.int64), lo.astype(np.int64), hi.astype(np.int64)


class HitCounter:
    """Hit positions of blocks of query rows against one gallery, by counting.

    Args:
        g_pids, g_camids: int64 [num_gallery] (pid −1 = junk).
        threads: worker threads (default: one per core).
    """

    def __init__(self, g_pids, g_camids, threads=None):
        if not numba_available():
            raise ImportError("The sort-free ranking (method='count') needs numba: pip install numba")
        self.g_pids = np.ascontiguousarray(g_pids, np.int64)
        self.g_cams = np.ascontiguousarray(g_camids, np.int64)
        self.g_ok = (self.g_pids != JUNK_PID).astype(np.uint8)
        self.threads = int(threads or num_threads())
        from sal_tf.evaluation.rank_count_kernel import count_rows

        self.kernel = count_rows

    def positions(self, d, q_pids, q_camids):
        """(rows, positions) for the block `d` (float32/float64 C-contiguous [b, num_gallery]).

        rows ascend, positions ascend within a row (the sorted path's layout); also returns
        the first row holding a NaN, or -1.
        """
        b = d.shape[0]
        g_order, lo, hi = _pid_slices(np.asarray(q_pids, np.int64), self.g_pids)
        ptr = np.concatenate([[0], np.cumsum(hi - lo)]).astype(np.int64)
        pos = np.zeros(int(ptr[-1]), np.int64)
        n_hits = np.zeros(b, np.int64)
        has_nan = np.zeros(b, np.bool_)
        q_cams = np.ascontiguousarray(q_camids, np.int64)
        args = (q_cams, lo, hi, g_order, self.g_cams, self.g_ok, ptr, pos, n_hits, has_nan)
        chunks = min(b, 4 * self.threads)
        edges = np.linspace(0, b, chunks + 1).astype(np.int64)
        if self.threads == 1 or chunks <= 1:
            self.kernel(d, 0, b, *args)
        else:
            with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
                jobs = [pool.submit(self.kernel, d, int(s), int(e), *args) for s, e in zip(edges[:-1], edges[1:])]
                for job in jobs:
                    job.result()
        bad = int(np.argmax(has_nan)) if has_nan.any() else -1
        rows = np.repeat(np.arange(b, dtype=np.int64), n_hits)
        keep = np.arange(len(pos)) - np.repeat(ptr[:-1], hi - lo) < np.repeat(n_hits, hi - lo)
        return rows, pos[keep], bad

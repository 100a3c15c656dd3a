"""`InlineGate`: whether a store call is fast enough to run on the event loop instead of a worker thread.

A sync call from an `async` route goes to anyio's worker thread and back: a queue hand-off, two
thread wake-ups and a wait for the GIL each way. With an approximate index a search by embedding
takes ~0.2 ms in the store (BUILD.md "Gallery store", approximate index), less than that hop: a
profile of `sal-serve` under 8 clients found the hop and its queue at ~22 % of the server's GIL
time and the index at 7 % (BUILD.md, "Where the time goes"). So the service runs such a search on
the event loop itself, and only while it stays fast: the gate keeps the wall time of the last
`window` calls of each kind (a search's filter set) and answers "inline" when the fastest of
them took at most `limit_s`. The fastest, because a call on a worker thread also counts its waits
for the GIL under load, which are no cost of the store; a store that is slow for every call (an
exact scan of a large gallery, a Milvus server over the network) stays on the threads, and one
that becomes slow leaves the loop within `window` calls. A kind never measured runs on a thread.
"""

import collections
import threading
import time

INLINE_LIMIT_S = 0.002  # a call this fast holds the event loop for less than the thread hop it saves costs in latency
WINDOW = 16  # recent calls per kind whose fastest decides


class InlineGate:
    """`timed(kind, fn, *args)` runs and times a call; `inline(kind)`: whether that kind's recent calls were fast."""

    def __init__(self, limit_s=INLINE_LIMIT_S, window=WINDOW):
        self.limit_s, self.window = limit_s, window
        self._times = {}
        self._lock = threading.Lock()

    def record(self, kind, seconds):
        with self._lock:
            self._times.setdefault(kind, collections.deque(maxlen=self.window)).append(seconds)

    def inline(self, kind):
        with self._lock:
            times = self._times.get(kind)
            return bool(times) and min(times) <= self.limit_s

    def timed(self, kind, fn, *args):
        """`fn(*args)`, its wall time recorded under `kind` (also when it raises)."""
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.record(kind, time.perf_counter() - start)

"""`Coalescer`: concurrent requests' work joined into one call (dynamic batching).

Under load, the service's searches and model calls arrive from many threads at once. One exact
search over a gallery reads every stored vector, whether it scores one query or sixteen, and one
model call on a batch costs far less than one per image; so while a call runs, the requests that
arrive queue, and the next thread to go runs all queued ones (up to `max_weight`) as one call per
key (a search's filters; one key for the model). A request waits for at most the call in flight
and its own; a lone request runs at once.
"""

import dataclasses
import threading


@dataclasses.dataclass(eq=False)
class _Pending:
    key: object
    payload: object
    weight: int
    done: bool = False
    result: object = None
    error: BaseException = None


class Coalescer:
    """`submit(key, payload)` returns `run(key, [payloads])[i]` for its payload, batched with others.

    Args:
        run: `run(key, payloads) -> results`, one result per payload, in order; an exception fails
            every payload of that call.
        max_weight: the most weight (see `weight`) one call takes; a heavier single payload runs alone.
        weight: `weight(payload) -> int` (default 1 per payload).
    """

    def __init__(self, run, max_weight=64, weight=None):
        self._run, self._max_weight = run, max_weight
        self._weight = weight or (lambda payload: 1)
        self._cond = threading.Condition()
        self._queue = []
        self._busy = False

    def submit(self, key, payload):
        entry = _Pending(key, payload, self._weight(payload))
        with self._cond:
            self._queue.append(entry)
        while True:
            with self._cond:
                while self._busy and not entry.done:
                    self._cond.wait()
                if entry.done:
                    break
                self._busy = True
                batch = self._take()  # oldest first: may not reach this entry yet
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _take(self):
        """The queued entries (oldest first, up to `max_weight`) for one round; the rest stay queued."""
        taken, total = [], 0
        while self._queue and (not taken or total + self._queue[0].weight <= self._max_weight):
            entry = self._queue.pop(0)
            taken.append(entry)
            total += entry.weight
        return taken

    def _run_batch(self, batch):
        groups = {}
        for entry in batch:
            groups.setdefault(entry.key, []).append(entry)
        for key, entries in groups.items():
            try:
                results = self._run(key, [e.payload for e in entries])
                for entry, result in zip(entries, results):
                    entry.result = result
            except BaseException as error:  # handed to each caller, raised there
                for entry in entries:
                    entry.error = error
            for entry in entries:
                entry.done = True

"""`sal_tf.serve.inline.InlineGate`, and the search route that uses it: a search by embedding that the store
answers fast runs on the event loop, any other search on a worker thread.

Where a request runs is seen only inside the server's process, so the second test calls the real app
(`create_app` over a real folder store and model) through ASGI in this process, with the store
wrapped to note the thread of each search; over HTTP the routes are checked in tests/test_serve_api.py.
"""

import asyncio
import json
import pathlib
import threading
import time

import numpy as np
import pytest

from sal_tf.serve.inline import InlineGate
from tests.serve_support import small_embedding_model

DIM = 64  # small_embedding_model


def test_the_gate_opens_on_fast_calls_per_kind_and_closes_when_they_turn_slow():
    gate = InlineGate(limit_s=0.005, window=4)
    assert not gate.inline("a")  # never measured: a thread
    assert gate.timed("a", lambda x: x + 1, 1) == 2
    assert gate.inline("a") and not gate.inline("b")
    for _ in range(3):
        gate.timed("a", time.sleep, 0.02)
    assert gate.inline("a")  # the fastest of the last 4 decides: GIL waits on a thread are not the store's
    gate.timed("a", time.sleep, 0.02)
    assert not gate.inline("a")  # 4 slow calls in a row

    def fails():
        raise ValueError("refused")

    with pytest.raises(ValueError):
        gate.timed("b", fails)
    assert gate.inline("b")  # a refusal is timed too


class ThreadNotingStore:
    """A gallery store that notes the thread of each `search` (everything else passes through)."""

    def __init__(self, store):
        self._store, self.threads = store, []

    def search(self, *args, **kwargs):
        self.threads.append(threading.current_thread())
        return self._store.search(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._store, name)


async def post(app, path, body):
    """One POST through the ASGI app: (status, parsed JSON answer)."""
    data = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": data, "more_body": False}]
    answer = {}

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], json.loads(answer["body"])


def test_searches_by_embedding_run_on_the_event_loop_once_the_store_answered_fast(tmp_path, data_root):
    from sal_tf.gallery import Item
    from sal_tf.serve import ServeSettings, create_app
    from sal_tf.serve.service import GalleryService
    from tests.serve_support import b64

    small_embedding_model().save(tmp_path / "small.keras")
    settings = ServeSettings(model=str(tmp_path / "small.keras"), store=str(tmp_path / "store"))
    service = GalleryService.open(settings)
    rng = np.random.default_rng(0)
    service.store.add(rng.standard_normal((50, DIM)), [Item(f"i{n}", 1 + n % 3) for n in range(50)])
    store = service.store = ThreadNotingStore(service.store)
    app = create_app(settings, service)
    query = rng.standard_normal(DIM).tolist()
    crop = next((pathlib.Path(data_root) / "bounding_box_test").glob("*.jpg")).read_bytes()

    async def session():
        loop_thread = threading.current_thread()
        threads = []
        for body in [
            {"embedding": query, "k": 3},  # not yet measured: a worker thread
            {"embedding": query, "k": 3},  # measured fast: the event loop
            {"embedding": query, "k": 3, "exclude_camera": 1},  # other filters, not yet measured: a thread
            {"embedding": query, "k": 3, "exclude_camera": 2},  # measured: the loop
            {"image_b64": b64(crop), "k": 3},  # the model runs: a thread
            {"embedding": [0.0] * DIM, "k": 3},  # refused by the service (zero vector), on the loop: still a 422
        ]:
            status, answer = await post(app, "/v1/search", body)
            threads.append((status, store.threads[-1] is loop_thread if status == 200 else None))
            if status == 200:
                assert len(answer["results"]) == 3 and answer["took_ms"] >= 0
            else:
                assert answer["field"] == "embedding", answer
        return threads

    try:
        seen = asyncio.run(session())
    finally:
        service.close()
    assert seen == [(200, False), (200, True), (200, False), (200, True), (200, False), (422, None)]

"""sal-serve killed with SIGKILL in the middle of a stream of adds loses nothing it acknowledged.

Two clients stream adds of two crops each to a server over the embedded (faiss) store; once
enough are acknowledged the server gets `kill -9` with requests in flight. Started again on the
same folders (no repair by hand), it must hold every acknowledged id, searchable and with its crop
served byte for byte; a batch that was in flight is all there or not at all; and no crop is left
without its store entry (stored crops = store count), not even one planted before the restart
for an id the store never held. Then its log is damaged (issue 31): the server refuses to start
until `sal-search repair`, and starts after it without the dropped items' crops; and with its crop
database damaged it refuses to start, naming the file, without a traceback.
"""

import contextlib
import glob
import os
import sqlite3
import sys
import threading

import pytest

from tests.serve_support import ServerProcess, b64, call, small_embedding_model

ACKS_BEFORE_KILL = 24  # acknowledged adds (of 2 crops each) before the kill
CLIENTS = 2


def stream_adds(url, batches, acked, sent, stop):
    for batch in batches:
        if stop.is_set():
            return
        items = [{"id": item_id, "image_b64": b64(data)} for item_id, data in batch]
        sent.append(batch)
        try:
            reply = call("POST", url + "/v1/gallery", {"items": items}, timeout=30)
        except OSError:  # the server is gone
            return
        if reply.status == 200:
            assert reply.json()["ids"] == [i for i, _ in batch]
            acked.extend(batch)


def stored_crops(tmp_path):
    """The number of crops in the service's crop database (`sal_tf/gallery/crops.py`), read beside the server."""
    with contextlib.closing(sqlite3.connect(tmp_path / "store.crops" / "crops.sqlite")) as db:
        return db.execute("SELECT count(*) FROM crops").fetchone()[0]


def present(url, item_id, data):
    """Whether the gallery holds `item_id`: a search by its crop finds it at distance ~0."""
    hits = call("POST", url + "/v1/search", {"image_b64": b64(data), "k": 10}).json()["results"]
    return any(h["id"] == item_id and h["distance"] < 1e-3 for h in hits)


@pytest.mark.slow
def test_kill_9_mid_stream_loses_nothing_acknowledged(tmp_path, data_root):
    small_embedding_model().save(tmp_path / "small.keras")
    files = sorted(glob.glob(os.path.join(data_root, "bounding_box_test", "*.jpg")))
    crops = [(f"item-{i}/{os.path.basename(p)}", open(p, "rb").read()) for i, p in enumerate(files)]
    batches = [crops[i : i + 2] for i in range(0, len(crops) - 1, 2)]
    args = [f"--model={tmp_path / 'small.keras'}", f"--store={tmp_path / 'store'}"]
    server = ServerProcess(args, str(tmp_path / "server.log"))
    acked, sent, stop = [], [], threading.Event()
    clients = [
        threading.Thread(target=stream_adds, args=(server.url, batches[c::CLIENTS], acked, sent, stop))
        for c in range(CLIENTS)
    ]
    for c in clients:
        c.start()
    while len(acked) < 2 * ACKS_BEFORE_KILL and any(c.is_alive() for c in clients):
        clients[0].join(0.01)
    server.kill9()
    stop.set()
    for c in clients:
        c.join()
    assert len(acked) >= 2 * ACKS_BEFORE_KILL and len(sent) * 2 < len(crops)  # killed mid-stream

    from sal_tf.gallery.crops import CropFolder

    orphans = CropFolder(tmp_path / "store.crops")  # a crop of an id the store never held (deleted by other means)
    orphans.write(["orphan"], [crops[0][1]], ["image/jpeg"])
    orphans.close()
    again = ServerProcess(args, str(tmp_path / "server2.log"))
    try:
        for item_id, data in acked:
            assert present(again.url, item_id, data), item_id
            image = call("GET", f"{again.url}/v1/gallery/{item_id.replace('/', '%2F')}/image")
            assert image.status == 200 and image.body == data
        in_flight = [b for b in sent if b[0] not in acked]
        print(f"{len(acked)} acknowledged, {len(in_flight)} batch(es) in flight at the kill, {len(crops)} crops")
        for batch in in_flight:  # all of a batch or none of it
            assert len({present(again.url, i, d) for i, d in batch}) == 1, batch
        count = call("GET", again.url + "/healthz").json()["count"]
        held = len(acked) + sum(2 for b in in_flight if present(again.url, *b[0]))
        assert count == held
        assert stored_crops(tmp_path) == count  # no crop without its entry
    finally:
        again.stop_cleanly()
    from sal_tf.gallery import open_store

    with open_store(str(tmp_path / "store")) as store:  # which model made the embeddings: in the store itself
        assert store.model == str(tmp_path / "small.keras")
    damaged_log_refused_then_repaired(tmp_path, args, count)


def damaged_log_refused_then_repaired(tmp_path, args, count):
    """The store's log damaged (a corrupt length, a corrupt payload): the server refuses to start, naming
    the byte and `sal-search repair`, the file left as it was; after the repair it serves every intact
    record, and the crops of the items the repair dropped are gone (cleaned at open)."""
    from sal_tf.gallery import append_log
    from tests.conftest import run_cmd

    (log,) = glob.glob(str(tmp_path / "store" / "log-*.bin"))
    data = bytearray(open(log, "rb").read())
    starts = [data.find(append_log.RECORD_MAGIC, append_log.MAGIC_SIZE)]
    while len(starts) < 6:
        starts.append(data.find(append_log.RECORD_MAGIC, starts[-1] + 1))
    data[starts[2] + 4 : starts[2] + 8] = (0x7FFFFFFF).to_bytes(4, "little")  # record 3's length (issue 31)
    data[starts[5] - 10] ^= 0xFF  # a byte of record 5's payload: that add (2 items) is lost
    open(log, "wb").write(bytes(data))
    with pytest.raises(RuntimeError, match=f"is damaged at byte {starts[2]}.*sal-search repair --store="):
        ServerProcess(args, str(tmp_path / "server3.log"))
    assert open(log, "rb").read() == bytes(data)
    repair = run_cmd([sys.executable, "-m", "sal_tf.cli.search", "repair", f"--store={tmp_path / 'store'}"])
    assert repair.returncode == 0 and "dropped 1 damaged span(s)" in repair.stdout, repair.stdout + repair.stderr
    repaired = ServerProcess(args, str(tmp_path / "server4.log"))
    try:
        assert call("GET", repaired.url + "/healthz").json()["count"] == count - 2
        assert stored_crops(tmp_path) == count - 2
        assert "Removed 2 crop(s)" in repaired.log_tail()
    finally:
        repaired.stop_cleanly()
    damaged_crops_refused(tmp_path, args)


def damaged_crops_refused(tmp_path, args):
    """A crop database that is not one: exit status 2, one `error:` line naming the file, no traceback."""
    from tests.conftest import run_cmd

    database = tmp_path / "store.crops" / "crops.sqlite"
    for side in glob.glob(f"{database}-*"):  # -wal, -shm: left only by a server that did not stop cleanly
        os.remove(side)
    database.write_bytes(b"overwritten by something else" * 300)
    refused = run_cmd([sys.executable, "-m", "sal_tf.cli.serve", "--port=0", *args], env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    (line,) = [s for s in refused.stderr.splitlines() if s.strip()]
    assert line.startswith("error: Crop database") and str(database) in line and "move the file aside" in line, line

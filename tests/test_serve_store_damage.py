"""A damaged store log through a real `sal-serve` (issue 31): refused at start, repaired, served again.

A folder store of 40 adds of two items each (40 log records: the store's own `add`, as the service
calls it) and their crops (in the layout of session 4's service, one file per crop: the server
migrates them into its crop database at open, `sal_tf/gallery/crops.py`) is damaged:
record 10's length field becomes 0x7FFFFFFF (the case that once passed for a torn tail and cut the
log to its first 9 records) and one payload byte of record 30 is flipped. `sal-serve` on it then
refuses to start: exit status 2, one `error:` line naming the log, the byte and `sal-search repair`,
no traceback, the log byte for byte as it was. `sal-search repair` keeps every other record (record
10 whole, its payload matching its CRC; record 30 dropped); the server then starts and serves every
kept item (search by its embedding, `GET .../image`, byte for byte from the migrated crops), and the
crops of record 30's items, which the store no longer holds, are gone (cleaned at open).
"""

import contextlib
import glob
import os
import sqlite3
import struct
import sys

import numpy as np
import pytest

from tests.conftest import run_cmd
from tests.serve_support import ServerProcess, call, small_embedding_model
from tests.test_gallery_crops import write_old_layout

RECORDS = 40  # adds of two items: one log record each
LENGTH_DAMAGED, PAYLOAD_DAMAGED = 10, 30  # 1-based record numbers
DIM = 64  # small_embedding_model's width
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def record_starts(data):
    """The byte offsets of a version-2 log's records, walked by their (intact) length fields."""
    from sal_tf.gallery import append_log

    assert data[: append_log.MAGIC_SIZE] == append_log.MAGIC_V2
    starts, at = [], append_log.MAGIC_SIZE
    while at < len(data):
        assert data[at : at + 4] == append_log.RECORD_MAGIC
        starts.append(at)
        (length,) = struct.unpack_from("<I", data, at + 4)
        at += append_log.HEADER_V2.size + length
    return starts


def fill(store_folder, crops):
    """The store and its crops as session 4's service left them: one file per crop, each batch added to the store."""
    from sal_tf.gallery import Item, open_store

    vectors = np.random.default_rng(0).standard_normal((len(crops), DIM)).astype(np.float32)
    write_old_layout(store_folder + ".crops", {item_id: ("image/jpeg", image) for item_id, image in crops})
    with open_store(store_folder, dim=DIM) as store:
        for first in range(0, len(crops), 2):
            ids = [item_id for item_id, _ in crops[first : first + 2]]
            store.add(vectors[first : first + 2], [Item(id=i) for i in ids])
    return {item_id: v for (item_id, _), v in zip(crops, vectors)}


def present(url, item_id, vector):
    """Whether the gallery holds `item_id`: a search by its embedding finds it at distance ~0."""
    hits = call("POST", url + "/v1/search", {"embedding": [float(v) for v in vector], "k": 5})
    return any(h["id"] == item_id and h["distance"] < 1e-3 for h in hits.json()["results"])


def image_of(url, item_id):
    return call("GET", f"{url}/v1/gallery/{item_id}/image")


@pytest.mark.slow
def test_a_damaged_log_is_refused_at_start_and_served_again_after_repair(tmp_path, data_root):
    small_embedding_model().save(tmp_path / "small.keras")
    files = sorted(glob.glob(os.path.join(data_root, "bounding_box_test", "*.jpg")))[: 2 * RECORDS]
    crops = [(f"item-{i}", open(p, "rb").read()) for i, p in enumerate(files)]
    store = str(tmp_path / "store")
    vectors = fill(store, crops)
    (log,) = glob.glob(os.path.join(store, "log-*.bin"))
    data = bytearray(open(log, "rb").read())
    starts = record_starts(data)
    assert len(starts) == RECORDS
    bad_length, bad_payload = starts[LENGTH_DAMAGED - 1], starts[PAYLOAD_DAMAGED - 1]
    data[bad_length + 4 : bad_length + 8] = struct.pack("<I", 0x7FFFFFFF)
    data[bad_payload + 40] ^= 0xFF
    damaged = bytes(data)
    open(log, "wb").write(damaged)
    model = f"--model={tmp_path / 'small.keras'}"

    refused = run_cmd([sys.executable, "-m", "sal_tf.cli.serve", "--port=0", model, f"--store={store}"], env=QUIET)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr and "http://" not in refused.stdout
    (line,) = [s for s in refused.stderr.splitlines() if s.strip()]
    assert line.startswith("error:") and log in line and f"is damaged at byte {bad_length}" in line, line
    assert f"sal-search repair --store={store}" in line, line
    assert open(log, "rb").read() == damaged

    repaired = run_cmd([sys.executable, "-m", "sal_tf.cli.search", "repair", f"--store={store}"], timeout=120)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert "kept 39 intact record(s) (1 with a damaged header" in repaired.stdout, repaired.stdout
    assert "dropped 1 damaged span(s)" in repaired.stdout, repaired.stdout

    assert len(os.listdir(store + ".crops/crops")) == len(crops) + 1  # repair leaves the crops alone (+ a staged file)
    lost = crops[2 * (PAYLOAD_DAMAGED - 1) : 2 * PAYLOAD_DAMAGED]
    kept = [c for c in crops if c not in lost]
    server = ServerProcess([model, f"--store={store}"], str(tmp_path / "server.log"), env=QUIET)
    try:
        assert call("GET", server.url + "/healthz").json()["count"] == len(kept) == 2 * RECORDS - 2
        for item_id, image in kept:
            reply = image_of(server.url, item_id)
            assert reply.status == 200 and reply.body == image, item_id
            assert present(server.url, item_id, vectors[item_id]), item_id
        for item_id, _ in lost:
            assert image_of(server.url, item_id).status == 404 and not present(server.url, item_id, vectors[item_id])
        with contextlib.closing(
            sqlite3.connect(store + ".crops/crops.sqlite")
        ) as db:  # the lost items' crops cleaned at open
            assert db.execute("SELECT count(*) FROM crops").fetchone()[0] == len(kept)
        assert not os.path.exists(store + ".crops/crops")  # every old crop file moved into the database
    finally:
        server.stop_cleanly()

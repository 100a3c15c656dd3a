"""Gallery stores on their real engines: the embedded folder store and Milvus Lite, one interface.

Every behaviour test runs on both back ends through the `store` fixture (one Milvus Lite file per
module, a fresh collection per test: Milvus Lite takes seconds to start). Then the two back ends
against each other on the same items, the embedded store's durability (torn tails, a `kill -9`
in the middle of a stream of adds), its lock and its compaction.
"""

import itertools
import json
import os
import struct
import sys
import threading
import zlib

import numpy as np
import pytest

from sal_tf.evaluation import distance_matrix
from sal_tf.gallery import MAX_K, Item, StoreCorruptedError, StoreLockedError, append_log, folder_store, open_store
from sal_tf.gallery.row_matrix import RowMatrix
from tests.conftest import run_cmd
from tests.crash_support import acknowledged_before_kill_9

pytest.importorskip("pymilvus")
DIM = 16
_collections = itertools.count()


def _unit(rng, n, d=DIM):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _items(n, start=0):
    """Items with every kind of metadata, some cameras and timestamps unknown."""
    return [
        Item(
            id=f"item-{i}",
            camera=None if i % 7 == 0 else i % 5,
            timestamp=None if i % 11 == 0 else 1000.0 + i,
            path=f"crops/{i}.jpg",
            person_id=i // 4 if i % 3 else None,
        )
        for i in range(start, start + n)
    ]


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory):
    """One Milvus Lite file for the module, its in-process server kept up by an open store."""
    path = str(tmp_path_factory.mktemp("milvus") / "gallery.db")
    keeper = open_store(path, dim=DIM, collection="keeper")
    yield path
    keeper.close()


@pytest.fixture(params=["folder", "milvus"])
def backend(request, tmp_path, milvus_db):
    """(kind, open(dim=..., distance=...) -> store) of a fresh, empty store of each back end."""
    if request.param == "folder":
        location, options = str(tmp_path / "store"), {}
    else:
        location, options = milvus_db, {"collection": f"t{next(_collections)}"}
    opened = []

    def open_(dim=DIM, distance="euclidean"):
        store = open_store(location, dim=dim, distance=distance, **options)
        opened.append(store)
        return store

    yield request.param, open_
    for store in opened:
        store.close()


@pytest.fixture
def store(backend):
    return backend[1]()


@pytest.fixture(scope="module", params=["folder", "milvus"])
def one_item_store(request, tmp_path_factory, milvus_db):
    """A store of each back end holding one item "before", shared by the tests that must not change it."""
    if request.param == "folder":
        store = open_store(str(tmp_path_factory.mktemp("shared") / "store"), dim=DIM)
    else:
        store = open_store(milvus_db, dim=DIM, collection="shared")
    store.add(np.ones((1, DIM)), [Item(id="before")])
    yield store
    store.close()


def _brute_force(store, queries, items, vectors, k, keep=None):
    dist = distance_matrix(queries, vectors, metric=store.distance)
    out = []
    for row in dist:
        order = [j for j in np.argsort(row, kind="stable") if keep is None or keep(items[j])][:k]
        out.append(([items[j].id for j in order], row[order]))
    return out


FILTERS = {
    "none": ({}, None),
    "exclude_camera": ({"exclude_camera": 2}, lambda it: it.camera is not None and it.camera != 2),
    "cameras": ({"cameras": [1, 3]}, lambda it: it.camera in (1, 3)),
    "time_range": (
        {"time_range": (1010.0, 1040.0)},
        lambda it: it.timestamp is not None and 1010 <= it.timestamp <= 1040,
    ),
    "all": (
        {"exclude_camera": 3, "cameras": [1, 3, 4], "time_range": (1000, 1100)},
        lambda it: it.camera in (1, 4) and it.timestamp is not None and it.timestamp <= 1100,
    ),
}


# --- one interface, both back ends ------------------------------------------------------------


def test_add_get_count_and_ids(store):
    rng = np.random.default_rng(0)
    ids = store.add(_unit(rng, 3) * 5, [Item(id="a", camera=1, timestamp=5, path="x.jpg"), Item(), Item(id="")])
    assert ids[0] == "a" and len(ids[1]) == len(ids[2]) == 32 and ids[1] != ids[2]
    assert store.count() == len(store) == 3
    assert store.get("a") == Item("a", 1, 5.0, "x.jpg", None)
    assert store.get(ids[1]) == Item(ids[1]) and store.get("missing") is None
    assert store.add(np.zeros((0, DIM)), []) == []
    stats = store.stats()
    assert {k: stats[k] for k in ("count", "dim", "distance", "kind")} == {
        "count": 3,
        "dim": DIM,
        "distance": "euclidean",
        "kind": store.kind,
    }


def test_ids_are_opaque_strings(store):
    rng = np.random.default_rng(1)
    odd = ["../../etc/passwd", "a\"b\\c'd", "id in [1] or 1 == 1", "ünïcødé 人", "x" * 1024]
    store.add(_unit(rng, len(odd)), [Item(id=i, path="/etc/shadow") for i in odd])
    for i in odd:
        assert store.get(i).id == i
    assert store.delete("a\"b\\c'd") and store.get("a\"b\\c'd") is None and store.count() == len(odd) - 1


def test_upsert_replaces_an_id(store):
    rng = np.random.default_rng(2)
    first, second = _unit(rng, 2)
    store.add(first[None], [Item(id="p", camera=1, timestamp=1.0, person_id=7)])
    store.add(second[None], [Item(id="p", camera=4)])
    assert store.count() == 1 and store.get("p") == Item("p", 4)
    (hit,) = store.search(second, k=5)[0]
    assert hit.id == "p" and hit.distance < 1e-6


def test_delete(store):
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 20)
    store.add(vectors, _items(20))
    assert store.delete("item-4") is True and store.delete("item-4") is False and store.delete("nope") is False
    assert store.count() == 19 and store.get("item-4") is None
    hits = store.search(vectors[4], k=19)[0]
    assert "item-4" not in [h.id for h in hits] and len(hits) == 19
    assert [h.id for h in store.search(vectors[19], k=1)[0]] == ["item-19"]  # the moved row still answers


def test_items_of_person_in_time_order_after_upserts_and_deletes(store):
    # a person's journey (sal-serve GET /v1/journeys/{id}): their items by timestamp, unknown times last, then id
    rng = np.random.default_rng(4)
    items = [
        Item(id="run/c2/5", camera=2, timestamp=30.0, person_id=9),
        Item(id="run/c1/1", camera=1, timestamp=10.0, person_id=9),
        Item(id="run/c1/2", camera=1, timestamp=10.0, person_id=8),
        Item(id="run/c3/b", camera=3, person_id=9),
        Item(id="run/c3/a", camera=3, person_id=9),
        Item(id="run/c2/7", camera=2, timestamp=20.0, person_id=-(2**63)),
        Item(id="run/c4/1", camera=4, timestamp=5.0),
    ]
    store.add(_unit(rng, len(items)), items)
    store.add(_unit(rng, 1), [Item(id="run/c1/2", camera=1, timestamp=12.0, person_id=9)])  # now person 9's
    store.delete("run/c2/5")
    assert [i.id for i in store.items_of_person(9)] == ["run/c1/1", "run/c1/2", "run/c3/a", "run/c3/b"]
    assert store.items_of_person(9)[1] == Item("run/c1/2", 1, 12.0, None, 9)
    assert [i.id for i in store.items_of_person(-(2**63))] == ["run/c2/7"]
    assert store.items_of_person(8) == [] and store.items_of_person(0) == []
    for bad in ("9", 2**63, None, True):
        with pytest.raises(ValueError, match="person_id"):
            store.items_of_person(bad)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("name", list(FILTERS))
def test_search_is_exact_with_each_filter(backend, distance, name):
    kwargs, keep = FILTERS[name]
    store = backend[1](distance=distance)
    rng = np.random.default_rng(4)
    vectors, items, queries = _unit(rng, 120), _items(120), _unit(rng, 4)
    store.add(vectors, items)
    results = store.search(queries, k=7, **kwargs)
    expected = _brute_force(store, queries, items, vectors, 7, keep)
    for hits, (ids, dist) in zip(results, expected):
        assert [h.id for h in hits] == ids
        np.testing.assert_allclose([h.distance for h in hits], dist, atol=1e-5)
        for h in hits:
            item = items[int(h.id.split("-")[1])]
            assert (h.camera, h.timestamp, h.path, h.person_id) == (
                item.camera,
                item.timestamp,
                item.path,
                item.person_id,
            )


def test_unknown_camera_and_time_match_only_without_a_filter(store):
    rng = np.random.default_rng(5)
    v = _unit(rng, 2)
    store.add(v, [Item(id="unknown"), Item(id="known", camera=1, timestamp=10.0)])
    assert {h.id for h in store.search(v[0], k=5)[0]} == {"unknown", "known"}
    for kwargs in ({"exclude_camera": 9}, {"cameras": [1]}, {"time_range": (0, 100)}):
        assert [h.id for h in store.search(v[0], k=5, **kwargs)[0]] == ["known"], kwargs
    assert store.search(v, k=5, cameras=[2]) == [[], []]  # nothing matches: empty lists
    assert [h.id for h in store.search(v[1], k=5, time_range=(10, 10))[0]] == ["known"]  # inclusive


def test_a_query_equal_to_an_item_is_at_distance_zero(store):
    rng = np.random.default_rng(6)
    v = _unit(rng, 50)
    store.add(v, _items(50))
    hits = store.search(v[:10] * 3.0, k=1)  # queries are normalised too
    assert [h[0].id for h in hits] == [f"item-{i}" for i in range(10)]
    assert max(h[0].distance for h in hits) < 1e-6
    assert len(store.search(v[0], k=MAX_K)[0]) == 50


@pytest.mark.parametrize(
    "embeddings, items, message",
    [
        (np.ones((2, DIM + 1)), _items(2), rf"`embeddings` must be a \[count, {DIM}\]"),
        (np.ones(DIM), _items(1), "`embeddings` must be"),
        (np.ones((2, DIM)), _items(3), "2 rows but 3 `items`"),
        (np.vstack([np.ones(DIM), np.zeros(DIM)]), _items(2), "`embeddings` row 1 is all zeros"),
        (np.vstack([np.ones(DIM), np.full(DIM, np.nan)]), _items(2), "`embeddings` row 1 contains NaN"),
        (np.array([["a"] * DIM]), _items(1), "`embeddings` must be numeric"),
        (np.ones((1, DIM)), [Item(id="a", camera="3")], r"`items\[0\].camera` must be an integer"),
        (np.ones((1, DIM)), [Item(id="a", camera=True)], r"`items\[0\].camera` must be an integer"),
        (np.ones((1, DIM)), [Item(id="a", camera=2**63)], r"`items\[0\].camera` must fit in 64 bits"),
        (np.ones((1, DIM)), [Item(id="a", timestamp=float("nan"))], r"`items\[0\].timestamp` must be a finite"),
        (np.ones((1, DIM)), [Item(id="a", person_id=1.5)], r"`items\[0\].person_id` must be an integer"),
        (np.ones((1, DIM)), [Item(id=3)], r"`items\[0\].id` must be a string"),
        (np.ones((1, DIM)), [Item(id="a\nb")], r"`items\[0\].id` contains a control character"),
        (np.ones((1, DIM)), [Item(id="x" * 1025)], r"`items\[0\].id` is longer than 1024 bytes"),
        (np.ones((1, DIM)), [Item(id="a", path=7)], r"`items\[0\].path` must be a string"),
        (np.ones((1, DIM)), [{"id": "a"}], r"`items\[0\]` must be a sal_tf.gallery.Item"),
        (np.ones((2, DIM)), [Item(id="a"), Item(id="a")], r"`items\[1\].id` 'a' repeats `items\[0\].id`"),
    ],
)
def test_a_bad_batch_is_refused_whole(one_item_store, embeddings, items, message):
    store = one_item_store
    with pytest.raises(ValueError, match=message):
        store.add(embeddings, items)
    assert store.count() == 1 and store.get("a") is None and store.get("item-0") is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"queries": np.ones((1, 3)), "k": 1}, rf"`queries` must be a \[count, {DIM}\] matrix"),
        ({"queries": np.zeros(DIM), "k": 1}, "`queries` row 0 is all zeros"),
        ({"k": 0}, r"`k` must be an integer in \[1, 16384\]"),
        ({"k": MAX_K + 1}, "`k` must be an integer"),
        ({"k": 2.0}, "`k` must be an integer"),
        ({"k": 1, "exclude_camera": "c1"}, "`exclude_camera` must be an integer"),
        ({"k": 1, "cameras": 3}, "`cameras` must be a list of integers"),
        ({"k": 1, "cameras": []}, "`cameras` must list at least one camera"),
        ({"k": 1, "time_range": (5, 1)}, r"`time_range` must be \(t0, t1\) with t0 <= t1"),
        ({"k": 1, "time_range": 5}, "`time_range` must be a pair"),
        ({"k": 1, "time_range": (0, float("inf"))}, r"`time_range\[1\]` must be a finite number"),
    ],
)
def test_bad_search_arguments_name_the_field(one_item_store, kwargs, message):
    store = one_item_store
    kwargs = {"queries": np.ones((1, DIM)), **kwargs}
    with pytest.raises(ValueError, match=message):
        store.search(**kwargs)


@pytest.mark.parametrize("kind", ["folder", "milvus"])
def test_reopen_keeps_items_deletes_and_distance(tmp_path, kind):
    location = str(tmp_path / ("store" if kind == "folder" else "reopen.db"))  # its own Milvus Lite: a real restart
    rng = np.random.default_rng(8)
    vectors = _unit(rng, 30)
    store = open_store(location, dim=DIM, distance="cosine")
    store.add(vectors[:20], _items(20))
    store.add(vectors[20:], _items(10, start=20))
    store.add(vectors[:1], [Item(id="item-0", camera=9)])
    store.delete("item-5")
    assert store.model is None
    store.record_model("runs/market")
    before = store.search(vectors[:3], k=10)
    store.close()
    with pytest.raises(RuntimeError, match="is closed"):
        store.count()
    with pytest.raises(ValueError, match=f"holds {DIM}-d embeddings; `dim`=8 was given"):
        open_store(location, dim=8)
    with open_store(location) as again:
        assert again.kind == kind and again.distance == "cosine" and again.dim == DIM and again.count() == 29
        assert again.get("item-0").camera == 9 and again.get("item-5") is None
        assert again.search(vectors[:3], k=10) == before
        assert again.model == again.stats()["model"] == "runs/market"  # kept in the store itself
        assert sorted(again.ids()) == sorted(f"item-{i}" for i in range(30) if i != 5)


def test_parity_of_the_two_back_ends(tmp_path, milvus_db):
    """Same items, same queries, every filter: the same ids in the same order, distances within 1e-5."""
    rng = np.random.default_rng(9)
    vectors, items = _unit(rng, 300), _items(300)
    queries = np.vstack([_unit(rng, 5), vectors[:3]])  # new vectors and exact copies of items
    embedded = open_store(str(tmp_path / "parity"), dim=DIM)
    milvus = open_store(milvus_db, dim=DIM, collection="parity")
    try:
        for store in (embedded, milvus):
            store.add(vectors[:200], items[:200])
            store.add(vectors[200:], items[200:])
            store.delete("item-17")
            store.add(vectors[:1] * -1, [Item(id="item-1", camera=3)])  # an upsert
        assert embedded.count() == milvus.count() == 299
        for name, (kwargs, _) in FILTERS.items():
            a, b = embedded.search(queries, k=10, **kwargs), milvus.search(queries, k=10, **kwargs)
            for ha, hb in zip(a, b):
                assert [h.id for h in ha] == [h.id for h in hb], name
                np.testing.assert_allclose([h.distance for h in ha], [h.distance for h in hb], atol=1e-5)
                assert [(h.camera, h.timestamp, h.path, h.person_id) for h in ha] == [
                    (h.camera, h.timestamp, h.path, h.person_id) for h in hb
                ]
    finally:
        embedded.close()
        milvus.close()


# --- the embedded store: lock, durability, compaction -----------------------------------------


def test_one_process_at_a_time(tmp_path):
    folder = str(tmp_path / "s")
    store = open_store(folder, dim=4)
    try:
        with pytest.raises(StoreLockedError, match=r"is open in another process \(pid \d+\)"):
            open_store(folder)
        code = f"from sal_tf.gallery import open_store; open_store({folder!r})"
        out = run_cmd([sys.executable, "-c", code], timeout=60)
        assert out.returncode != 0 and "StoreLockedError" in out.stderr and f"pid {os.getpid()}" in out.stderr
    finally:
        store.close()
    open_store(folder).close()  # the lock goes with the store


def test_opening_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="give the embedding width"):
        open_store(str(tmp_path / "new"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a gallery store"):
        open_store(str(tmp_path / "other"), dim=4)
    with pytest.raises(ValueError, match="`distance` must be one of"):
        open_store(str(tmp_path / "d"), dim=4, distance="l1")
    with pytest.raises(ValueError, match="`dim` must be a positive integer"):
        open_store(str(tmp_path / "d"), dim=0)


def _log_path(folder):
    (path,) = [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("log-")]
    return path


def _record_starts(path):
    """Byte offsets of the log's records."""
    data, starts = open(path, "rb").read(), []
    version = append_log.version_of(data[: append_log.MAGIC_SIZE])
    header = append_log.HEADER_V1 if version == 1 else append_log.HEADER_V2
    at = append_log.MAGIC_SIZE
    while at < len(data):
        starts.append(at)
        at += header.size + header.unpack_from(data, at)[version - 1]
    return starts


@pytest.mark.parametrize("damage", ["cut in the payload", "cut in the header", "bad crc at the end", "zeros"])
def test_a_torn_last_record_is_dropped_at_open(tmp_path, damage):
    folder = str(tmp_path / "s")
    rng = np.random.default_rng(10)
    v = _unit(rng, 3)
    with open_store(folder, dim=DIM) as store:
        store.add(v[:2], [Item(id="a"), Item(id="b")])
        store.add(v[2:], [Item(id="c")])
    path = _log_path(folder)
    size, last = os.path.getsize(path), _record_starts(path)[-1]
    with open(path, "r+b") as f:
        if damage == "cut in the payload":
            f.truncate(size - 5)
        elif damage == "cut in the header":
            f.truncate(last + 5)
        elif damage == "bad crc at the end":
            f.seek(size - 1)
            byte = f.read(1)
            f.seek(size - 1)
            f.write(bytes([byte[0] ^ 0xFF]))
        else:
            f.seek(0, 2)
            f.write(b"\x00" * 6)  # a header cut short (an interrupted append)
    with open_store(folder) as store:
        expected = {"a", "b"} if damage != "zeros" else {"a", "b", "c"}
        assert {i for i in "abc" if store.get(i)} == expected
        assert store.stats()["recovered_bytes"] > 0
        store.add(v[2:], [Item(id="d")])  # appends after the truncation
    with open_store(folder) as store:
        assert store.get("d") and store.stats()["recovered_bytes"] == 0


def test_a_damaged_record_in_the_middle_is_an_error(tmp_path):
    folder = str(tmp_path / "s")
    rng = np.random.default_rng(11)
    with open_store(folder, dim=DIM) as store:
        for name in "abc":
            store.add(_unit(rng, 1), [Item(id=name)])
    with open(_log_path(folder), "r+b") as f:
        f.seek(append_log.MAGIC_SIZE + append_log.HEADER_V2.size + 3)
        f.write(b"\xab\xcd")
    with pytest.raises(StoreCorruptedError, match="is damaged at byte 8: .* an intact record follows"):
        open_store(folder)


def _forty_records(folder, rng, version=2):
    """A store of 40 logged adds of 4 items each (record r holds items r-0..r-3); a version-1 store is
    written as the code before log version 2 wrote it (store.json `sal_tf.gallery.faiss`, `SALGLOG1`)."""
    vectors = _unit(rng, 160)
    batches = [(vectors[4 * r : 4 * r + 4], [Item(id=f"{r}-{i}", camera=r % 3) for i in range(4)]) for r in range(40)]
    if version == 2:
        with open_store(folder, dim=DIM) as store:
            for batch in batches:
                store.add(*batch)
        return vectors
    os.makedirs(folder)
    meta = {"format": "sal_tf.gallery.faiss", "version": 1, "dim": DIM, "distance": "euclidean"}
    with open(os.path.join(folder, "store.json"), "w") as f:
        json.dump(meta, f)
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump({"model": "old.keras"}, f)  # the side file `sal-search add` wrote then
    with open(os.path.join(folder, "log-00000000.bin"), "wb") as f:
        f.write(append_log.MAGIC_V1)
        for v, items in batches:
            payload = folder_store._encode_add(v.astype(np.float32), items)
            f.write(append_log.HEADER_V1.pack(len(payload), zlib.crc32(payload)) + payload)
    return vectors


@pytest.mark.parametrize("version", [1, 2])
def test_a_corrupt_length_mid_log_is_refused_unchanged_and_repair_keeps_every_intact_record(tmp_path, version):
    """Record 10 of 40 gets the length 0x7FFFFFFF (and record 20 a damaged payload): opening refuses
    and changes no byte; repair keeps the 39 intact records (record 10's payload still matches its CRC)."""
    folder = str(tmp_path / "s")
    vectors = _forty_records(folder, np.random.default_rng(13), version)
    path = _log_path(folder)
    starts = _record_starts(path)
    with open(path, "r+b") as f:
        f.seek(starts[10] + (0 if version == 1 else 4))
        f.write(struct.pack("<I", 0x7FFFFFFF))
        f.seek(starts[20] + 40)
        f.write(b"\xff\xfe")
    before = open(path, "rb").read()
    with pytest.raises(StoreCorruptedError, match=rf"{path}' is damaged at byte {starts[10]}: .*sal-search repair"):
        open_store(folder)
    assert open(path, "rb").read() == before and os.listdir(folder).count(os.path.basename(path)) == 1
    report = folder_store.FolderStore.repair(folder)
    assert (report.kept, report.recovered, report.dropped) == (39, 1, [(starts[20], starts[21])])
    assert [f for f in os.listdir(folder) if f.startswith("damaged-")], "the damaged log is kept"
    with open_store(folder) as store:
        assert store.count() == 156 and store.get("20-0") is None and store.get("10-3").camera == 1
        assert [h.id for h in store.search(vectors[43], k=1)[0]] == ["10-3"]
        assert store.model == (None if version == 2 else "old.keras")
    assert folder_store.read_meta(folder)["format"] == folder_store.FORMAT  # upgraded: log version 2
    assert open(_log_path(folder), "rb").read(8) == append_log.MAGIC_V2


def test_an_old_store_opens_upgraded_and_its_torn_tail_is_still_cut(tmp_path):
    folder = str(tmp_path / "s")
    _forty_records(folder, np.random.default_rng(14), version=1)
    path = _log_path(folder)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 10)  # the last add cut by a crash
    with open_store(folder) as store:
        assert store.count() == 156 and store.get("39-0") is None and store.stats()["recovered_bytes"] > 0
        assert store.stats()["model"] == "old.keras"
        store.record_model("new.keras")
    meta = folder_store.read_meta(folder)
    assert (meta["format"], meta["version"], meta["model"]) == (folder_store.FORMAT, 2, "new.keras")


def test_a_damaged_snapshot_is_refused_naming_it(tmp_path):
    folder = str(tmp_path / "s")
    with open_store(folder, dim=DIM) as store:
        store.add(_unit(np.random.default_rng(15), 200), _items(200))
        store.compact()
    path = os.path.join(folder, "snapshot.npz")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 3] ^= 0xFF  # inside the vectors
    open(path, "wb").write(bytes(data))
    with pytest.raises(StoreCorruptedError, match=r"snapshot.npz' is damaged \(BadZipFile: Bad CRC-32"):
        open_store(folder)


def test_the_matrix_grows_keeping_its_rows_in_place_or_past_a_live_view():
    matrix = RowMatrix(4, 3)
    matrix.array[:] = rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    matrix.grow(50_000, 3)  # mremap: no copy
    assert matrix.capacity == 50_000 and (matrix.array[:3] == rows).all() and not matrix.array[3:].any()
    view = matrix.array[:3]  # a view alive: the map cannot be resized, so the rows are copied to a new one
    matrix.grow(120_000, 3)
    assert matrix.capacity == 120_000 and (matrix.array[:3] == rows).all() and not matrix.array[3:].any()
    assert (view == rows).all()


def test_compaction_keeps_everything_and_bounds_the_log(tmp_path):
    folder = str(tmp_path / "s")
    rng = np.random.default_rng(12)
    vectors = _unit(rng, 400)
    with open_store(folder, dim=DIM, compact_bytes=4096) as store:
        for start in range(0, 400, 25):
            store.add(vectors[start : start + 25], _items(25, start))
        for i in range(0, 400, 3):
            store.delete(f"item-{i}")
        stats = store.stats()
        assert stats["log_generation"] > 3 and stats["log_bytes"] <= max(4096, stats["snapshot_bytes"] // 2) + 2000
        before = store.search(vectors[:5], k=10, exclude_camera=1)
        assert len(os.listdir(folder)) == 4  # store.json, snapshot.npz, one log, LOCK
    with open_store(folder) as store:
        assert store.count() == 400 - 134 and store.search(vectors[:5], k=10, exclude_camera=1) == before


def test_threads_add_and_search_at_once(tmp_path):
    rng = np.random.default_rng(13)
    vectors = _unit(rng, 800)
    errors = []
    with open_store(str(tmp_path / "s"), dim=DIM, compact_bytes=20_000) as store:

        def writer(part):
            try:
                for start in range(part * 200, part * 200 + 200, 20):
                    store.add(vectors[start : start + 20], _items(20, start))
                    store.delete(f"item-{start}")
            except Exception as e:
                errors.append(e)

        def reader():
            try:
                for _ in range(50):
                    for hits in store.search(vectors[:8], k=5, time_range=(1000, 1800)):
                        assert all(1000 <= h.timestamp <= 1800 for h in hits)
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)] + [
            threading.Thread(target=reader) for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert store.count() == 800 - 40
        for i in range(1, 800, 20):
            assert store.search(vectors[i], k=1)[0][0].id == f"item-{i}"


CHILD = """
import json, sys
import numpy as np
from sal_tf.gallery import Item, open_store
store = open_store(sys.argv[1], dim={dim}, compact_bytes=30_000)
for batch in range(100000):
    rng = np.random.default_rng(batch)
    ids = [f"b{{batch}}-{{j}}" for j in range(8)]
    store.add(rng.standard_normal((8, {dim})), [Item(id=i, camera=batch % 3, timestamp=float(batch)) for i in ids])
    print(json.dumps(ids), flush=True)
"""


def test_every_acknowledged_add_survives_kill_9(tmp_path):
    """A writer adds batches in a loop (compacting now and then) and is killed mid-stream."""
    folder = str(tmp_path / "crash")
    acknowledged = acknowledged_before_kill_9(CHILD.format(dim=DIM), [folder], wanted=60 * 8)
    with open_store(folder) as store:  # no repair by hand
        assert store.count() >= len(acknowledged)
        batches = sorted({int(i.split("-")[0][1:]) for i in acknowledged})
        for batch in batches:
            rng = np.random.default_rng(batch)
            hits = store.search(rng.standard_normal((8, DIM)), k=1)
            assert [h[0].id for h in hits] == [f"b{batch}-{j}" for j in range(8)]
            assert hits[0][0].timestamp == float(batch) and hits[0][0].camera == batch % 3

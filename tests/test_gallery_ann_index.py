"""The folder store's approximate index (sal_tf/gallery/ann_index.py) against exact numpy search:
recall, filters inside the search, deletes and replacements, saving and a damaged file."""

import contextlib
import json
import logging
import os

import numpy as np
import pytest

from sal_tf.gallery import ann_index

DIM = 16
ROWS = ann_index.IVF_MIN_ROWS + 400  # past the size where `ivf` trains
CAMERAS = 6


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def gallery():
    """Clustered unit rows (people seen several times), cameras, and queries near some of them."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((400, DIM))
    vectors = _unit(centres[rng.integers(0, 400, ROWS)] + 0.35 * rng.standard_normal((ROWS, DIM)))
    queries = _unit(vectors[rng.choice(ROWS, 60, replace=False)] + 0.1 * rng.standard_normal((60, DIM)))
    return vectors, rng.integers(1, CAMERAS + 1, ROWS), queries


def exact(queries, vectors, k, keep=None):
    scores = queries @ vectors.T
    if keep is not None:
        scores[:, ~keep] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def recall(found, truth):
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


@pytest.fixture(scope="module", params=["hnsw", "ivf"])
def built(request, gallery, tmp_path_factory):
    """(folder, index of generation 0 over the gallery) of each approximate kind, filters always approximate."""
    vectors = gallery[0]
    folder = str(tmp_path_factory.mktemp(request.param))
    index = ann_index.AnnIndex(request.param, DIM, exact_filter_rows=0)
    index.open(folder, 0, vectors)
    return folder, index


def test_recall_against_exact_and_the_measured_setting(built, gallery):
    vectors, _, queries = gallery
    _, index = built
    stats = index.stats()
    assert stats["index_built"] == index.kind
    assert stats["index_recall_at_10"] >= ann_index.TARGET_RECALL
    assert ("efSearch" if index.kind == "hnsw" else "nprobe") in stats
    assert recall(index.search(queries, 10, vectors, None), exact(queries, vectors, 10)) >= 0.95


def test_filters_are_applied_inside_the_search(built, gallery):
    vectors, cameras, queries = gallery
    _, index = built
    for keep in (cameras != 2, np.isin(cameras, [1, 3])):
        found = index.search(queries, 10, vectors, keep)
        assert keep[found].all(), "a filtered-out row was returned"
        assert (found >= 0).all(), "fewer than k hits although enough rows pass the filter"
        assert recall(found, exact(queries, vectors, 10, keep)) >= 0.95


def test_small_filters_and_large_k_go_exact(gallery):
    vectors, cameras, queries = gallery
    index = ann_index.AnnIndex("hnsw", DIM)  # default: filters keeping <= EXACT_FILTER_ROWS rows are exact
    index._install(index._built("hnsw", vectors[:500]))
    index.calibrate(vectors[:500])
    assert index.search(queries, 10, vectors[:500], cameras[:500] == 1) is None
    assert index.search(queries, ann_index.MAX_APPROX_K + 1, vectors[:500], None) is None
    assert ann_index.AnnIndex("flat", DIM).search(queries, 10, vectors, None) is None


def test_deletes_moves_and_replacements(built, gallery):
    """The store's swap-delete (last row moves into the hole) and upserts, mirrored in a copy of the rows."""
    vectors, _, queries = gallery
    folder, saved = built
    index = ann_index.AnnIndex(saved.kind, DIM, exact_filter_rows=0)
    index.open(folder, 0, vectors)  # a second copy, loaded from the saved files
    rows = vectors.copy()
    target = int(exact(queries[:1], rows, 1)[0, 0])  # the nearest row of query 0: delete it
    last = len(rows) - 1
    index.on_delete(target, last)
    rows[target] = rows[last]
    rows = rows[:last]
    found = index.search(queries[:1], 5, rows, None)[0]
    np.testing.assert_array_equal(found, exact(queries[:1], rows, 5)[0])  # the deleted vector is never returned
    moved = index.search(rows[target : target + 1], 1, rows, None)[0, 0]
    assert moved == target  # the moved row is found under its new row number
    index.on_add(np.array([7, len(rows)]), np.stack([queries[1], queries[2]]))  # replace row 7, append one
    rows = np.concatenate([rows, queries[2:3]])
    rows[7] = queries[1]
    assert index.search(queries[1:3], 1, rows, None)[:, 0].tolist() == [7, len(rows) - 1]
    assert recall(index.search(queries, 10, rows, None), exact(queries, rows, 10)) >= 0.95
    index.save(folder, 1, rows, contextlib.nullcontext)
    reopened = ann_index.AnnIndex(saved.kind, DIM, exact_filter_rows=0)
    reopened.open(folder, 1, rows)
    assert reopened.build_s == saved.build_s, "the saved index was rebuilt instead of loaded"
    np.testing.assert_array_equal(reopened.search(queries, 10, rows, None), index.search(queries, 10, rows, None))
    assert not [f for f in os.listdir(folder) if f.startswith("index-00000000")], "the old generation's files stay"


def test_a_damaged_index_file_is_rebuilt_with_a_warning(gallery, tmp_path, caplog):
    vectors = gallery[0][:2000]
    index = ann_index.AnnIndex("hnsw", DIM)
    index.open(str(tmp_path), 3, vectors)
    path = tmp_path / "index-00000003.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="sal_tf.gallery.ann_index"):
        again = ann_index.AnnIndex("hnsw", DIM)
        again.open(str(tmp_path), 3, vectors)
    assert "index-00000003.faiss is missing or damaged" in caplog.text
    assert again.built == "hnsw"
    assert again.search(vectors[:3], 1, vectors, None)[:, 0].tolist() == [0, 1, 2]
    assert index.search(vectors[:3], 1, vectors, None)[:, 0].tolist() == [0, 1, 2]


def test_the_setting_is_measured_on_new_queries_and_an_index_measured_on_its_own_rows_is_measured_again(
    gallery, tmp_path
):
    vectors = gallery[0][:3000]
    queries = ann_index.calibration_queries(vectors)
    assert len(queries) == ann_index.CALIBRATION_QUERIES
    assert (queries @ vectors.T).max(axis=1).max() < 0.9999, "a calibration query is a row of the index"
    index = ann_index.AnnIndex("hnsw", DIM)
    index.open(str(tmp_path), 2, vectors)
    stats = index.stats()
    assert stats["index_calibration"] == ann_index.CALIBRATION and stats["index_calibrated_rows"] == 3000
    measured = ann_index.recall_at(index.search(queries, 10, vectors, None), exact(queries, vectors, 10))
    assert measured == stats["index_recall_at_10"] >= ann_index.TARGET_RECALL
    meta_path = tmp_path / "index-00000002.json"  # as the own-row calibration saved it: efSearch 16, no "calibration"
    meta = json.loads(meta_path.read_text())
    del meta["calibration"]
    meta_path.write_text(json.dumps({**meta, "setting": {"efSearch": 16}, "recall_at_10": 0.999}))
    again = ann_index.AnnIndex("hnsw", DIM)
    again.open(str(tmp_path), 2, vectors)
    assert again.build_s == index.build_s, "the saved index was rebuilt instead of loaded"
    assert again.stats()["efSearch"] == stats["efSearch"] and again.recall == stats["index_recall_at_10"]
    assert json.loads(meta_path.read_text())["calibration"] == ann_index.CALIBRATION, "the new setting is not saved"


def test_calibration_stops_at_the_target_or_where_a_step_stops_paying():
    recalls = {16: 0.90, 24: 0.95, 32: 0.951, 48: 0.99}
    steps = [{"nprobe": p} for p in recalls]
    assert ann_index._first_reaching(lambda s: recalls[s["nprobe"]], steps) == ({"nprobe": 48}, 0.99)
    assert ann_index._first_reaching(lambda s: recalls[s["nprobe"]], steps, plateau=True) == ({"nprobe": 24}, 0.95)


def test_kinds_and_sizes():
    with pytest.raises(ValueError, match="`index` must be one of"):
        ann_index.check_kind("annoy")
    auto = ann_index.AnnIndex("auto", DIM)
    assert auto.due_kind(ann_index.AUTO_MIN_ROWS - 1) is None
    assert auto.due_kind(ann_index.AUTO_MIN_ROWS) == "hnsw"
    assert auto.due_kind(ann_index.AUTO_IVF_ROWS) == "ivf"
    assert ann_index.AnnIndex("ivf", DIM).due_kind(ann_index.IVF_MIN_ROWS - 1) is None


# --- in the folder store (open_store(..., index=...)) ------------------------------------------


def _items(count, start=0):
    from sal_tf.gallery import Item

    return [Item(id=f"p{i}", camera=i % CAMERAS + 1, timestamp=float(i)) for i in range(start, start + count)]


def _ids(hits):
    return [[h.id for h in row] for row in hits]


@pytest.fixture(scope="module")
def exact_store(gallery, tmp_path_factory):
    from sal_tf.gallery import open_store

    store = open_store(str(tmp_path_factory.mktemp("flat") / "s"), dim=DIM, index="flat")
    store.add(gallery[0], _items(ROWS))
    yield store
    store.close()


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_a_store_with_an_index_answers_as_exact_search_does(kind, gallery, exact_store, tmp_path):
    from sal_tf.gallery import open_store

    vectors, _, queries = gallery
    folder = str(tmp_path / "s")
    with open_store(folder, dim=DIM, index=kind) as store:
        for start in range(0, ROWS, 1500):  # `ivf` trains when the gallery passes IVF_MIN_ROWS
            store.add(vectors[start : start + 1500], _items(min(1500, ROWS - start), start))
        stats = store.stats()
        assert stats["index"] == kind and stats["index_built"] == kind
        assert stats["index_recall_at_10"] >= ann_index.TARGET_RECALL
        assert len({"efSearch", "nprobe"} & set(stats)) == 1
        for filters in ({}, {"exclude_camera": 2}, {"cameras": [1, 3]}, {"time_range": (100.0, 3000.0)}):
            found, truth = store.search(queries, 10, **filters), exact_store.search(queries, 10, **filters)
            same = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(_ids(found), _ids(truth))])
            assert same >= 0.95, filters
            for hit in (h for row in found for h in row):  # distances are exact; filters hold
                assert hit.camera != filters.get("exclude_camera") and hit.camera in filters.get(
                    "cameras", [hit.camera]
                )
        nearest = [row[0] for row in _ids(store.search(queries[:5], 1))]
        for item_id in nearest:
            assert store.delete(item_id)
        store.add(queries[5:6], _items(1, start=7))  # replaces p7 by query 5
        after = store.search(queries[:6], 3)
        assert not set(nearest) & {h.id for row in after for h in row}, "a deleted item was returned"
        assert after[5][0].id == "p7" and after[5][0].distance < 1e-6
    with open_store(folder) as store:  # reopened: the saved index (of the kind asked before), the log replayed into it
        assert store.stats()["index"] == kind
        assert store.stats()["index_build_s"] == stats["index_build_s"], "the index was rebuilt at open"
        assert _ids(store.search(queries[:6], 3)) == _ids(after)


CHILD = """
import json, sys
import numpy as np
from sal_tf.gallery import Item, open_store
store = open_store(sys.argv[1], dim=16, compact_bytes=20_000, index="hnsw")
for batch in range(100000):
    rng = np.random.default_rng(batch)
    ids = [f"b{batch}-{j}" for j in range(8)]
    store.add(rng.standard_normal((8, 16)), [Item(id=i, camera=batch % 3) for i in ids])
    if batch % 5 == 4:
        store.delete(ids[0])
    print(json.dumps(ids[1:] if batch % 5 == 4 else ids), flush=True)
"""


def test_every_acknowledged_add_survives_kill_9_with_an_hnsw_index(tmp_path):
    """A writer adds (and deletes) in a loop, the index saved at each compaction, and is killed mid-stream."""
    from sal_tf.gallery import open_store
    from tests.crash_support import acknowledged_before_kill_9

    folder = str(tmp_path / "crash")
    acknowledged = acknowledged_before_kill_9(CHILD, [folder], wanted=400)
    assert any(name.startswith("index-") for name in os.listdir(folder)), "no index was saved before the kill"
    with open_store(folder, index="hnsw") as store:
        assert store.stats()["index_built"] == "hnsw"
        batches = sorted({int(i.split("-")[0][1:]) for i in acknowledged})
        for batch in batches:
            rng = np.random.default_rng(batch)
            found = [row[0].id for row in store.search(rng.standard_normal((8, 16)), k=1)]
            wanted = [f"b{batch}-{j}" for j in range(8)]
            if batch % 5 == 4:  # its first item was deleted: never returned
                assert found[0] != wanted[0] and found[1:] == wanted[1:]
            else:
                assert found == wanted


def test_sal_search_add_with_an_index_and_its_mistakes(gallery, tmp_path):
    import json
    import sys

    from sal_tf.inference import embedding_files
    from tests.conftest import run_cmd

    def cli(*args):
        return run_cmd([sys.executable, "-m", "sal_tf.cli.search", *args], timeout=120, cwd=str(tmp_path))

    paths = [f"{i:04d}_c{i % CAMERAS + 1}s1_000001_00.jpg" for i in range(300)]
    embedding_files.save_npz(str(tmp_path / "g.npz"), embedding_files.Embeddings(gallery[0][:300], paths))
    added = cli("add", "--store=s", "--embeddings=g.npz", "--index=hnsw", "--timestamp=none")
    assert added.returncode == 0, added.stderr[-2000:]
    stats = cli("stats", "--store=s")  # no --index: the store keeps what it was given
    assert stats.returncode == 0, stats.stderr[-2000:]
    assert {k: json.loads(stats.stdout)[k] for k in ("index", "index_built")} == {
        "index": "hnsw",
        "index_built": "hnsw",
    }
    for args, message in (
        (["add", "--store=t", "--embeddings=g.npz", "--index=ivf_flat"], "`index` must be one of"),
        (["index", "--embeddings=g.npz", "--index_dir=i", "--index=hnsw"], "index: --index must be one of flat, ivf"),
    ):
        out = cli(*args)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


@pytest.mark.slow  # a sal-serve process with a model: ~20 s on 2 cores
def test_sal_serve_index_reaches_the_store(tmp_path):
    """`sal-serve --index=hnsw` over real HTTP: searches answered, and the store keeps the kind it was given."""
    from PIL import Image

    from sal_tf.gallery import open_store
    from tests.serve_support import ServerProcess, b64, call, small_embedding_model

    small_embedding_model().save(tmp_path / "small.keras")
    rng = np.random.default_rng(0)
    images = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (64, 32, 3)).astype(np.uint8)).save(tmp_path / f"{i}.png")
        images.append(b64((tmp_path / f"{i}.png").read_bytes()))
    store = str(tmp_path / "store")
    with ServerProcess(
        [f"--model={tmp_path / 'small.keras'}", f"--store={store}", "--index=hnsw"], str(tmp_path / "log")
    ) as server:
        items = [{"id": f"i{i}", "image_b64": image, "camera": i % 2} for i, image in enumerate(images)]
        assert call("POST", server.url + "/v1/gallery", {"items": items}).status == 200
        reply = call("POST", server.url + "/v1/search", {"image_b64": images[3], "k": 2, "exclude_camera": 0})
        assert reply.status == 200 and [h["id"] for h in reply.json()["results"]][0] == "i3"
    with open_store(store) as opened:
        assert {k: opened.stats()[k] for k in ("index", "index_built")} == {"index": "hnsw", "index_built": "hnsw"}

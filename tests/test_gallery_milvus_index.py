"""The Milvus store's index types and parameters (sal_tf/gallery/milvus_index.py) on Milvus Lite:
an HNSW collection answers with the filters as the exact one does, a FLAT collection is re-indexed
on request, and what Milvus Lite cannot build is refused with a message naming a server."""

import numpy as np
import pytest

from sal_tf.gallery import Item, milvus_index, open_store

DIM = 16


def _gallery():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, DIM)).astype(np.float32)
    items = [Item(id=f"p{i}", camera=i % 4, timestamp=float(i)) for i in range(400)]
    return vectors, items, rng.standard_normal((20, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A Milvus Lite file with an exact (FLAT) collection `exact` of the gallery, kept open."""
    path = str(tmp_path_factory.mktemp("milvus") / "g.db")
    vectors, items, _ = _gallery()
    store = open_store(path, dim=DIM, collection="exact")
    store.add(vectors, items)
    yield path, store
    store.close()


def _ids(hits):
    return [[h.id for h in row] for row in hits]


def test_an_hnsw_collection_answers_with_the_filters_as_exact_search(db):
    path, exact = db
    vectors, items, queries = _gallery()
    with open_store(path, dim=DIM, collection="hnsw", index="hnsw", search_params={"ef": 64}) as store:
        store.add(vectors, items)
        stats = store.stats()
        assert stats["index"] == "HNSW, metric IP" and stats["search_params"] == {"ef": 64}
        assert stats["index_params"] == milvus_index.BUILD["HNSW"]
        for filters in ({}, {"exclude_camera": 1}, {"cameras": [2]}, {"time_range": (50.0, 250.0)}):
            assert _ids(store.search(queries, 5, **filters)) == _ids(exact.search(queries, 5, **filters)), filters


def test_a_flat_collection_is_reindexed_on_request_and_auto_keeps_it(db):
    path, _ = db
    vectors, items, queries = _gallery()
    with open_store(path, dim=DIM, collection="later") as store:
        store.add(vectors[:50], items[:50])
        assert store.stats()["index"] == "FLAT, metric IP (exact)"  # auto on Milvus Lite: exact
        before = _ids(store.search(queries, 3))
    with open_store(path, collection="later", index="IVF_FLAT", index_params={"nlist": 8}) as store:
        assert store.stats()["index"] == "IVF_FLAT, metric IP"
        assert store.count() == 50
    with open_store(path, collection="later", search_params={"nprobe": 8}) as store:
        assert store.stats()["index"] == "IVF_FLAT, metric IP"
        assert _ids(store.search(queries, 3)) == before  # all 8 cells probed: exact


@pytest.mark.parametrize(
    "options, message",
    [
        ({"index": "ivf"}, "Milvus Lite cannot build a IVF_PQ index"),
        ({"index": "DISKANN"}, "Use a Milvus server"),
        ({"index": "annoy"}, "`index` must be auto, flat, hnsw, ivf or a Milvus index type"),
        ({"index": "hnsw", "search_params": [64]}, "`search_params` must be a dict of HNSW parameters"),
    ],
)
def test_what_milvus_lite_cannot_build_is_refused(db, options, message):
    path, _ = db
    with pytest.raises(ValueError, match=message):
        open_store(path, dim=DIM, collection="refused", **options)


def test_a_server_gets_every_type():
    assert milvus_index.spec("auto", 128, lite=False) == ("HNSW", milvus_index.BUILD["HNSW"], {"ef": 128})
    kind, build, _ = milvus_index.spec("ivf", 128, lite=False, index_params={"nlist": 4096})
    assert kind == "IVF_PQ" and build == {"nlist": 4096, "nbits": 8, "m": 32}
    assert milvus_index.spec("DISKANN", 128, lite=False)[2] == {"search_list": 100}

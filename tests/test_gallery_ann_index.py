"""The folder store's approximate index (sal_tf/gallery/ann_index.py) against exact numpy search:
recall, filters inside the search, deletes and replacements, saving and a damaged file."""

import contextlib
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


def test_kinds_and_sizes():
    with pytest.raises(ValueError, match="`index` must be one of"):
        ann_index.check_kind("annoy")
    auto = ann_index.AnnIndex("auto", DIM)
    assert auto.due_kind(ann_index.AUTO_MIN_ROWS - 1) is None
    assert auto.due_kind(ann_index.AUTO_MIN_ROWS) == "hnsw"
    assert auto.due_kind(ann_index.AUTO_IVF_ROWS) == "ivf"
    assert ann_index.AnnIndex("ivf", DIM).due_kind(ann_index.IVF_MIN_ROWS - 1) is None

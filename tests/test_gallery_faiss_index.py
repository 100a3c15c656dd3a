"""Index folders (faiss): equal a brute-force numpy top-k; a saved index reloads to the same answers."""

import json
import sys

import numpy as np
import pytest

from sal_tf.cli.search.output import entries, format_table
from sal_tf.evaluation import distance_matrix, re_rank_features
from sal_tf.evaluation.distance import to_distance
from sal_tf.gallery import Hit
from sal_tf.gallery.faiss_index import GalleryIndex, default_nlist, pq_subquantizers
from sal_tf.inference import embedding_files
from tests.conftest import run_cmd


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(q, g, k, metric):
    dist = distance_matrix(q, g, metric=metric)
    rows = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, rows, axis=1), rows


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    gallery, queries = _unit(rng, 500, 32), _unit(rng, 20, 32)
    paths = [f"g/{i:04d}.jpg" for i in range(500)]
    return gallery, queries, paths, rng.integers(0, 50, 500), rng.integers(0, 6, 500)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_flat_search_equals_brute_force(data, metric):
    gallery, queries, paths, _, _ = data
    index = GalleryIndex.build(gallery, paths, distance=metric)
    dist, rows = index.search(queries, k=10)
    ref_dist, ref_rows = _brute_force(queries, gallery, 10, metric)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
    assert dist.dtype == np.float32 and rows.dtype == np.int64
    parts = GalleryIndex.create(32, distance=metric)  # filled in parts (as a streamed gallery)
    parts.add(gallery[:200], paths[:200])
    parts.add(gallery[200:], paths[200:])
    np.testing.assert_array_equal(parts.search(queries, k=10)[1], ref_rows)
    assert parts.paths == paths and len(parts) == parts.info["size"] == 500
    # unnormalised inputs are normalised first: same answers
    dist2, rows2 = index.search(queries * 3.0, k=10)
    np.testing.assert_array_equal(rows2, ref_rows)
    np.testing.assert_allclose(dist2, ref_dist, atol=1e-5)


def test_ivf_flat_scanning_every_cell_is_exact_and_k_is_capped(data):
    gallery, queries, paths, _, _ = data
    index = GalleryIndex.build(gallery, paths, kind="ivf_flat", nlist=8, nprobe=2)
    assert (index.info["nlist"], index.info["nprobe"], index.info["factory"]) == (8, 2, "IVF8,Flat")
    dist, rows = index.search(queries, k=5, nprobe=8)  # all cells: exhaustive
    ref_dist, ref_rows = _brute_force(queries, gallery, 5, "euclidean")
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
    small = GalleryIndex.build(gallery[:3], paths[:3])
    assert small.search(queries, k=10)[1].shape == (20, 3)
    assert default_nlist(1_000_000) == 1000 and default_nlist(100) == 2
    assert pq_subquantizers(1024) == 256 and pq_subquantizers(128) == 64 and pq_subquantizers(100) == 50


def test_ivf_rescores_its_candidates_exactly():
    rng = np.random.default_rng(1)
    gallery = _unit(rng, 2000, 64)
    near = gallery[:50] + 0.05 * rng.standard_normal((50, 64)).astype(np.float32)  # noisy copies of rows 0..49
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    index = GalleryIndex.build(gallery, [str(i) for i in range(2000)], kind="ivf", nlist=16, nprobe=16)
    assert index.info["factory"] == "IVF16,PQ32x4fs,RFlat" and index.info["k_factor"] == 64
    dist, rows = index.search(near, k=5)
    np.testing.assert_array_equal(rows[:, 0], np.arange(50))  # the copied row comes first
    exact = distance_matrix(near, gallery, metric="euclidean")
    np.testing.assert_allclose(dist, np.take_along_axis(exact, rows, axis=1), atol=1e-5)  # exact distances
    assert np.all(np.diff(dist, axis=1) >= 0)


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivf_flat"])
def test_saved_index_reloads_to_the_same_answers(tmp_path, data, kind):
    gallery, queries, paths, pids, camids = data
    index = GalleryIndex.build(gallery, paths, pids, camids, kind=kind, nlist=8, source="gallery.npz")
    before = index.search(queries, k=7)
    index.save(str(tmp_path / "idx"))
    with pytest.raises(FileExistsError, match="--overwrite"):
        index.save(str(tmp_path / "idx"))
    loaded = GalleryIndex.load(str(tmp_path / "idx"))
    after = loaded.search(queries, k=7)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])
    assert loaded.paths == paths and loaded.info["kind"] == kind and loaded.info["source"] == "gallery.npz"
    np.testing.assert_array_equal(loaded.pids, pids)
    np.testing.assert_allclose(loaded.vectors(), gallery, atol=1e-6)


def test_reranked_search_equals_re_rank_features_and_refuses_big_galleries(data):
    gallery, queries, paths, _, _ = data
    index = GalleryIndex.build(gallery[:100], paths[:100])
    dist, rows = index.search_reranked(queries, k=5)
    ref = re_rank_features(queries, gallery[:100], metric="euclidean")
    ref_rows = np.argsort(ref, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, ref_rows, axis=1), atol=1e-6)
    with pytest.raises(ValueError, match="--max_rerank=50"):
        index.search_reranked(queries, k=5, max_items=50)


def test_hits_results_and_table(data):
    gallery, queries, paths, pids, camids = data
    index = GalleryIndex.build(gallery, paths, pids, camids)
    dist, rows = index.search(queries[:2], k=3)
    hits = index.hits(rows, dist)
    assert hits[0][0] == Hit(
        paths[rows[0, 0]], float(dist[0, 0]), int(camids[rows[0, 0]]), None, paths[rows[0, 0]], int(pids[rows[0, 0]])
    )
    results = entries(hits, ["q0.jpg", "q1.jpg"], [int(pids[rows[0, 0]]), -5], [None, None])
    assert [h["path"] for h in results[0]["results"]] == [paths[j] for j in rows[0]]
    assert set(results[0]["results"][0]) == {
        "rank",
        "id",
        "distance",
        "camera",
        "timestamp",
        "path",
        "person_id",
        "match",
    }
    assert results[0]["results"][0]["match"] is True and results[1]["results"][0]["match"] is False
    assert results[0]["results"][0]["distance"] == pytest.approx(float(dist[0, 0]), abs=1e-6)
    table = format_table(results)
    assert "q0.jpg" in table and paths[rows[1, 2]] in table and "euclidean" in table
    np.testing.assert_allclose(to_distance([1.0, 0.0, -1.0]), [0.0, np.sqrt(2), 2.0], atol=1e-6)


def test_bad_inputs(tmp_path, data):
    gallery, queries, paths, _, _ = data
    with pytest.raises(FileNotFoundError, match="lacks"):
        GalleryIndex.load(str(tmp_path))
    with pytest.raises(ValueError, match="--index"):
        GalleryIndex.build(gallery, paths, kind="hnsw")
    with pytest.raises(ValueError, match="`distance` must be one of"):
        GalleryIndex.build(gallery, paths, distance="manhattan")
    with pytest.raises(ValueError, match="paths"):
        GalleryIndex.build(gallery, paths[:3])
    with pytest.raises(ValueError, match="32-d"):
        GalleryIndex.build(gallery, paths).search(queries[:, :8])


def _cli(*args, cwd):
    return run_cmd([sys.executable, "-m", "sal_tf.cli.search", *args], cwd=cwd)


@pytest.mark.slow  # two fresh processes import TensorFlow and faiss (~20 s on 2 loaded cores)
def test_cli_index_and_query(tmp_path, data):
    gallery, queries, paths, pids, camids = data
    g = embedding_files.Embeddings(gallery, paths, pids, camids, model="m.keras")
    embedding_files.save_npz(str(tmp_path / "g.npz"), g)
    embedding_files.save_npz(str(tmp_path / "q.npz"), embedding_files.Embeddings(queries[:2], ["q0.jpg", "q1.jpg"]))
    out = _cli("index", "--embeddings=g.npz", "--index_dir=idx", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = _cli("query", "--index_dir=idx", "--queries=q.npz", "--k=4", "--format=jsonl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(s) for s in out.stdout.splitlines()]
    ref_dist, ref_rows = _brute_force(queries[:2], gallery, 4, "euclidean")
    assert [[h["path"] for h in entry["results"]] for entry in lines] == [[paths[j] for j in r] for r in ref_rows]


def test_cli_bad_input_is_an_error_line_and_exit_2(tmp_path):
    out = _cli("query", "--index_dir=idx", "--queries=q.npz", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "error: --index_dir 'idx' lacks ['index.faiss', 'gallery.npz', 'index.json']; expected a folder "
        "written by the search command's `index`."
    )


@pytest.mark.parametrize("kind", ["flat", "ivf_flat", "ivf"])
def test_a_keep_mask_filters_inside_the_search(data, kind):
    gallery, queries, paths, pids, camids = data
    index = GalleryIndex.build(gallery, paths, pids, camids, kind=kind, nlist=8, nprobe=8)
    keep = camids != 2
    dist, rows = index.search(queries, k=10, keep=keep)
    assert keep[rows].all() and np.all(np.diff(dist, axis=1) >= 0)
    ref_dist, ref_rows = _brute_force(queries, gallery[keep], 10, "euclidean")
    if kind != "ivf":  # exhaustive probing of float vectors: exact
        np.testing.assert_array_equal(rows, np.flatnonzero(keep)[ref_rows])
        np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
    few = np.zeros(len(gallery), bool)
    few[[3, 7]] = True
    dist, rows = index.search(queries[:2], k=5, keep=few)  # fewer rows pass than k: -1 at inf
    assert set(rows[:, :2].ravel()) <= {3, 7} and (rows[:, 2:] == -1).all() and np.isinf(dist[:, 2:]).all()
    assert [len(found) for found in index.hits(rows, dist)] == [2, 2]
    with pytest.raises(ValueError, match="bool mask of the 500 gallery rows"):
        index.search(queries, k=3, keep=keep[:10])


def test_cameras_are_shown_as_the_file_names_number_them():
    """A Market `c1` file is camera 1 in tables and pictures, though evaluation stores camid 0."""
    from sal_tf.inference import pictures, sources

    assert sources.parse_ids("0002_c1s1_000451_03.jpg") == (2, 0)  # evaluation's numbering
    assert sources.parse_camera("0002_c1s1_000451_03.jpg") == 1 and sources.parse_camera("holiday.jpg") is None
    assert sources.camera_number("a/0002_c1s1_000451_03.jpg", 0) == 1
    assert sources.camera_number("a/0005_c6_f0046985.jpg", 5) == 6
    assert sources.camera_number("cam0/frame1.jpg", 0) == 0  # a CSV's cameras: as given
    assert sources.camera_number("a/0002_c1s1_000451_03.jpg", 4) == 4 and sources.camera_number("x.jpg", None) is None
    rng = np.random.default_rng(3)
    paths = ["g/0002_c1s1_000451_03.jpg", "g/0002_c5s1_000100_01.jpg", "g/0003_c2s1_000001_01.jpg"]
    index = GalleryIndex.build(_unit(rng, 3, 8), paths, [2, 2, 3], [0, 4, 1])
    dist, rows = index.search(index.vectors()[:1], k=3)
    entry = entries(index.hits(rows, dist), ["q/0002_c3s1_000001_01.jpg"], [2], [3])[0]
    assert entry["results"][0]["camera"] == 1 and entry["query_camera"] == 3
    assert sorted(h["camera"] for h in entry["results"]) == [1, 2, 5]
    table = format_table([entry])
    assert "(pid 2, c3)" in table and "c1  yes" in table and "c5  yes" in table and "c2  no" in table
    assert "cam 0" not in table and "cam 4" not in table
    assert pictures.id_label(2, 1, paths[0]) == "pid 2 · c1" and pictures.id_label(None, None, paths[0]) == paths[0][2:]


def test_importing_search_changes_no_faiss_setting():
    code = (
        "import faiss; before = faiss.cvar.distance_compute_blas_threshold\n"
        "import numpy as np; from sal_tf.gallery import faiss_index as search\n"
        "assert faiss.cvar.distance_compute_blas_threshold == before, 'changed at import'\n"
        "index = search.GalleryIndex.build(np.eye(4, dtype='float32'), list('abcd'))\n"
        "index.search(np.eye(4, dtype='float32'), k=1)\n"
        "print(before, faiss.cvar.distance_compute_blas_threshold)\n"
    )
    out = run_cmd([sys.executable, "-c", code], timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert after == min(before, 20)


@pytest.mark.parametrize("kind", ["ivf", "ivf_flat"])
def test_approximate_kinds_are_exact_below_the_size_where_they_pay(data, kind):
    gallery, queries, paths, _, _ = data
    index = GalleryIndex.build(gallery, paths, kind=kind)  # 500 × 32: far below EXACT_BELOW
    assert index.info["kind"] == "flat" and index.info["requested"] == kind
    np.testing.assert_array_equal(index.search(queries, k=10)[1], _brute_force(queries, gallery, 10, "euclidean")[1])
    assert GalleryIndex.build(gallery, paths, kind=kind, nlist=8).info["kind"] == kind  # an explicit nlist: IVF


def test_search_hits_filters_by_camera_as_a_store_does(data):
    gallery, queries, paths, pids, camids = data
    index = GalleryIndex.build(gallery, paths, pids, camids)  # names without cameras: the camids as given
    hits = index.search_hits(queries, k=10, exclude_camera=3, cameras=[1, 3, 4])
    keep = np.isin(camids, [1, 4])
    _, ref_rows = _brute_force(queries, gallery[keep], 10, "euclidean")
    assert [[h.id for h in found] for found in hits] == [[paths[j] for j in np.flatnonzero(keep)[r]] for r in ref_rows]
    assert {h.camera for found in hits for h in found} <= {1, 4}
    with pytest.raises(ValueError, match="Camera filters need the gallery's cameras"):
        GalleryIndex.build(gallery, paths).search_hits(queries, k=3, exclude_camera=1)

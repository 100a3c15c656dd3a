"""k-reciprocal re-ranking against the dense classic algorithm (`rerank_classic`)."""

import tracemalloc

import numpy as np
import pytest

from sal_tf.evaluation import distance_matrix, re_rank_distances, re_rank_features
from sal_tf.evaluation.rerank_classic import classic_re_ranking


def _dists(q, g, metric):
    return (
        distance_matrix(q, g, metric),
        distance_matrix(q, q, metric),
        distance_matrix(g, g, metric),
    )


PARAMS = [(20, 6, 0.3), (5, 1, 0.5), (7, 3, 0.0), (3, 30, 1.0)]  # k1 odd: round(k1/2) is banker's


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k1,k2,lam", PARAMS)
def test_matrices_match_classic_with_ties(seed, k1, k2, lam):
    rng = np.random.default_rng(seed)
    nq, ng = int(rng.integers(5, 25)), int(rng.integers(30, 70))
    feats = rng.integers(0, 3, size=(nq + ng, 4)).astype(np.float32)  # many exact ties
    q_g, q_q, g_g = _dists(feats[:nq], feats[nq:], "euclidean")
    ref = classic_re_ranking(q_g, q_q, g_g, k1, k2, lam)
    got = re_rank_distances(q_g, q_q, g_g, k1, k2, lam, block_size=int(rng.integers(1, 9)))
    assert got.dtype == np.float32 and got.shape == (nq, ng)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", range(2))
def test_asymmetric_matrices_follow_the_column_convention(seed):
    # The classic code divides columns by their max and transposes: row i uses D[:, i].
    rng = np.random.default_rng(seed)
    nq, ng = 12, 40
    q_g = rng.integers(1, 6, (nq, ng)).astype(np.float64)
    q_q = rng.integers(1, 6, (nq, nq)).astype(np.float64)
    g_g = rng.integers(1, 6, (ng, ng)).astype(np.float64)
    np.fill_diagonal(q_q, 0)
    np.fill_diagonal(g_g, 0)
    ref = classic_re_ranking(q_g, q_q, g_g, 6, 3, 0.3)
    np.testing.assert_allclose(re_rank_distances(q_g, q_q, g_g, 6, 3, 0.3, block_size=5), ref, atol=1e-5)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("integer", [False, True])
def test_features_signature_matches_classic_and_matrix_signature(metric, integer):
    rng = np.random.default_rng(1)
    nq, ng = 15, 60
    if integer and metric == "cosine":
        # rows with four ones in eight dims: normalised entries 0.5, exact cosines, many ties
        feats = np.stack([rng.permutation(8) < 4 for _ in range(nq + ng)]).astype(np.float32)
    elif integer:  # exact distances (any summation order), many ties
        feats = rng.integers(0, 3, size=(nq + ng, 4)).astype(np.float32) + 0.5
    else:
        feats = rng.standard_normal((nq + ng, 16)).astype(np.float32)
    q, g = feats[:nq], feats[nq:]
    mats = _dists(q, g, metric)
    ref = classic_re_ranking(*mats)
    from_feats = re_rank_features(q, g, metric=metric, block_size=11)
    np.testing.assert_allclose(from_feats, ref, atol=1e-5)
    np.testing.assert_allclose(from_feats, re_rank_distances(*mats), atol=1e-5)


def test_tiny_set_smaller_than_k1():
    rng = np.random.default_rng(3)
    q, g = rng.standard_normal((3, 5)), rng.standard_normal((6, 5))  # N = 9 < k1 + 1
    ref = classic_re_ranking(*_dists(q, g, "euclidean"))
    np.testing.assert_allclose(re_rank_features(q, g), ref, atol=1e-5)


def test_reranking_improves_a_clustered_case():
    # sanity: on id-clustered features re-ranking should not hurt (it usually helps)
    from sal_tf.evaluation import evaluate_rank

    rng = np.random.default_rng(0)
    nid, per = 40, 8
    centers = rng.standard_normal((nid, 32))
    pids = np.repeat(np.arange(1, nid + 1), per)
    feats = centers[pids - 1] + 0.9 * rng.standard_normal((len(pids), 32))
    cams = np.tile(np.arange(per), nid) % 4
    is_q = np.tile(np.arange(per) < 2, nid)
    args = (pids[is_q], pids[~is_q], cams[is_q], cams[~is_q])
    base = evaluate_rank(distance_matrix(feats[is_q], feats[~is_q]), *args)
    rr = evaluate_rank(re_rank_features(feats[is_q], feats[~is_q]), *args)
    assert rr.mAP > base.mAP


def test_memory_stays_far_below_n_squared(monkeypatch):
    # numpy allocations are traced: with small blocks (and a small Jaccard term budget,
    # a constant ~50 MiB by default) the peak must be a small fraction of one N×N
    # float32 matrix (the output q×g is allowed).
    from sal_tf.evaluation import rerank

    monkeypatch.setattr(rerank, "_TERM_BUDGET", 1 << 16)
    rng = np.random.default_rng(0)
    nq, ng, dim = 100, 4900, 16
    centres = rng.standard_normal((500, dim))  # 500 ids × 10 images, like a re-ID set
    feats = (np.repeat(centres, 10, axis=0) + 0.5 * rng.standard_normal((nq + ng, dim))).astype(np.float32)
    q, g = feats[:nq], feats[nq:]
    n = nq + ng
    tracemalloc.start()
    out = re_rank_features(q, g, block_size=64)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (nq, ng)
    assert peak < 0.2 * n * n * 4, f"peak {peak / 2**20:.1f} MiB vs N×N {n * n * 4 / 2**20:.1f} MiB"


def test_bad_input_is_rejected():
    rng = np.random.default_rng(0)
    q, g = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    with pytest.raises(ValueError, match="feature dimension"):
        re_rank_features(q, g[:, :2])
    with pytest.raises(ValueError, match="metric"):
        re_rank_features(q, g, metric="manhattan")
    with pytest.raises(ValueError, match="k1"):
        re_rank_features(q, g, k1=0)
    with pytest.raises(ValueError, match="lambda_value"):
        re_rank_features(q, g, lambda_value=1.5)
    q_g, q_q, g_g = _dists(q, g, "euclidean")
    with pytest.raises(ValueError, match="g_g_dist"):
        re_rank_distances(q_g, q_q, g_g[:5])
    with pytest.raises(ValueError, match="q_q_dist"):
        re_rank_distances(q_g, np.full_like(q_q, np.nan), g_g)
    with pytest.raises(ValueError, match="positive maximum"):
        re_rank_distances(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((3, 3)))


# ------------------------------------------------------------ faiss neighbours (knn_mode)
def _clustered(seed, nid=50, n=900, nq=150, dim=24, noise=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((nid, dim))
    pids = rng.integers(1, nid + 1, n)
    feats = (centres[pids - 1] + noise * rng.standard_normal((n, dim))).astype(np.float32)
    cams = rng.integers(0, 4, n)
    return feats[:nq], feats[nq:], (pids[:nq], pids[nq:], cams[:nq], cams[nq:])


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_faiss_exact_neighbours_agree_with_dense(metric):
    q, g, _ = _clustered(0)
    dense = re_rank_features(q, g, metric=metric, knn_mode="dense")
    flat = re_rank_features(q, g, metric=metric, knn_mode="flat", block_size=97)
    np.testing.assert_allclose(flat, dense, rtol=0, atol=1e-5)
    # IVF probing every list is an exhaustive search: the same result
    ivf_all = re_rank_features(q, g, metric=metric, knn_mode="ivf", nlist=12, nprobe=12)
    np.testing.assert_allclose(ivf_all, dense, rtol=0, atol=1e-5)


def test_approximate_ivf_keeps_the_scores_on_a_clustered_case():
    from sal_tf.evaluation import evaluate_rank

    q, g, labels = _clustered(1, noise=0.45)
    dense = evaluate_rank(re_rank_features(q, g, knn_mode="dense"), *labels)
    approx = re_rank_features(q, g, knn_mode="ivf", nlist=20, nprobe=4)
    ivf = evaluate_rank(approx, *labels)
    assert abs(ivf.mAP - dense.mAP) < 0.02 and abs(ivf.rank(1) - dense.rank(1)) < 0.02
    base = evaluate_rank(distance_matrix(q, g), *labels)
    assert ivf.mAP > base.mAP  # still a re-ranking gain


def test_auto_mode_is_exact_and_ivf_only_on_request():
    q, g, _ = _clustered(2, n=300, nq=40)
    auto = re_rank_features(q, g)
    np.testing.assert_array_equal(auto, re_rank_features(q, g, knn_mode="exact"))
    np.testing.assert_allclose(auto, re_rank_features(q, g, knn_mode="dense"), rtol=0, atol=1e-5)
    # few lists probed: approximate, so not what "auto" gives
    assert not np.array_equal(auto, re_rank_features(q, g, knn_mode="ivf", nlist=8, nprobe=1))


# --------------------------------------------------------- exact k-NN in strips (knn_mode="exact")
def _tie_features(metric, n, seed):
    """Features whose distances are computed exactly in float32 (any order), with many ties."""
    rng = np.random.default_rng(seed)
    if metric == "cosine":  # four ones in eight dims: normalised entries 0.5, exact cosines
        return np.stack([rng.permutation(8) < 4 for _ in range(n)]).astype(np.float32)
    return rng.integers(0, 3, size=(n, 4)).astype(np.float32) + 0.5


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("block_size", [1, 7, 64, None])
def test_exact_neighbours_are_the_sorted_rows(metric, block_size):
    # top k by (D², index) and the row maxima, against a stable sort of the full N×N matrix;
    # strips of 1, 7 and 64 rows (and one strip) put the diagonal and block edges everywhere.
    from sal_tf.evaluation import knn
    from sal_tf.evaluation.distance import distance_block, prepare

    x, sq = prepare(_tie_features(metric, 300, 0), metric)
    full = distance_block(x, sq, x, sq, metric) ** 2
    k = 25
    idx, d2, row_max = knn.exact_neighbours(x, sq, metric, k, block_size=block_size)
    want = np.argsort(full, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(d2, np.take_along_axis(full, want, axis=1))
    np.testing.assert_array_equal(row_max, full.max(axis=1))
    # the strips handed out are the upper triangle of the same matrix
    seen = np.full_like(full, np.nan)

    def keep(s, e, m):
        seen[s:e, s:] = m

    knn.exact_neighbours(x, sq, metric, k, block_size, on_strip=keep)
    upper = np.triu(np.ones_like(full, dtype=bool))
    np.testing.assert_array_equal(seen[upper], full[upper])


def test_exact_neighbours_on_float_features_and_bad_k():
    from sal_tf.evaluation import knn
    from sal_tf.evaluation.distance import distance_block, prepare

    rng = np.random.default_rng(5)
    x, sq = prepare(rng.standard_normal((257, 32)).astype(np.float32), "euclidean")
    full = distance_block(x, sq, x, sq, "euclidean") ** 2
    idx, d2, row_max = knn.exact_neighbours(x, sq, "euclidean", 257, block_size=50)  # k = n: whole rows
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1, kind="stable"))
    np.testing.assert_allclose(row_max, full.max(axis=1), rtol=1e-5)
    np.testing.assert_allclose(d2, np.sort(full, axis=1), rtol=1e-5, atol=1e-3)  # self: cancellation
    for k in (0, 258, 2.0):
        with pytest.raises(ValueError, match="`k`"):
            knn.exact_neighbours(x, sq, "euclidean", k)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (7, 3, 0.5)])
def test_exact_mode_equals_dense_and_classic_with_ties(metric, k1, k2, lam):
    feats = _tie_features(metric, 320, 1)
    q, g = feats[:50], feats[50:]
    ref = classic_re_ranking(*_dists(q, g, metric), k1, k2, lam)
    dense = re_rank_features(q, g, metric=metric, k1=k1, k2=k2, lambda_value=lam, knn_mode="dense")
    for block_size in (1, 13, 64, None):  # strips that straddle the query/gallery edge (50) and not
        got = re_rank_features(q, g, metric, k1, k2, lam, block_size=block_size, knn_mode="exact")
        np.testing.assert_array_equal(got, dense)  # same neighbours, maxima and q×g od, bit for bit
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_division_ties_flag_every_row_whose_top_k_could_change():
    # od = D² / max can merge distinct D²: where the kept k + 1 (by D², index) do not give the
    # top k by (od, index) of the whole row, the row must be flagged; most rows are not.
    from sal_tf.evaluation.rerank import _division_ties

    rng = np.random.default_rng(0)
    values = [np.float32(0.99)]
    for _ in range(7):  # eight adjacent floats; dividing by ~1.9 merges neighbours
        values.append(np.nextafter(values[-1], np.float32(2)))
    values = np.array(values, np.float32)
    rows, n, k = 4000, 30, 5
    full = rng.choice(values, size=(rows, n))
    row_max = rng.choice(np.array([1.9, 1.7, 1.0], np.float32), size=rows)
    row_max = np.maximum(row_max, full.max(axis=1))
    assert len(np.unique(values / np.float32(1.9))) < len(values)
    order = np.lexsort((np.broadcast_to(np.arange(n), full.shape), full))[:, : k + 1]
    d2 = np.take_along_axis(full, order, axis=1)
    od_full = full / row_max[:, None]
    truth = np.lexsort((np.broadcast_to(np.arange(n), full.shape), od_full))[:, :k]
    near = d2 / row_max[:, None]
    kept = np.take_along_axis(order, np.lexsort((order, near))[:, :k], axis=1)
    wrong = (kept != truth).any(axis=1)
    flagged = _division_ties(d2, near, row_max)
    assert wrong.any() and not (wrong & ~flagged).any()
    assert flagged.mean() < 0.9


def test_knn_helpers_find_true_nearest_and_farthest():
    from sal_tf.evaluation import knn

    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    rows = np.arange(50, 200)
    true_near = np.sort(np.argsort(d[rows], axis=1)[:, :5], axis=1)
    for index in (knn.NeighbourIndex(x), knn.NeighbourIndex(x, exact=False, nlist=5, nprobe=5)):
        idx, dist = index.nearest(rows, 5)
        np.testing.assert_array_equal(np.sort(idx, axis=1), true_near)
        np.testing.assert_allclose(
            dist, np.sqrt(np.take_along_axis(d[rows], idx, axis=1)), rtol=1e-4, atol=3e-3
        )  # self: sqrt(rounding)
        far, far_d = index.farthest(rows)
        np.testing.assert_array_equal(far, d[rows].argmax(axis=1))
        np.testing.assert_allclose(far_d, np.sqrt(d[rows].max(axis=1)), rtol=1e-4)
    # probing fewer lists: still mostly the true neighbours on clustered rows
    y = (np.repeat(rng.standard_normal((20, 8)), 10, axis=0) + 0.1 * rng.standard_normal((200, 8))).astype(np.float32)
    dy = ((y[:, None] - y[None]) ** 2).sum(-1)
    approx = knn.NeighbourIndex(y, exact=False, nlist=5, nprobe=2).nearest(rows, 5)[0]
    hits = [len(np.intersect1d(a, b)) for a, b in zip(approx, np.argsort(dy[rows], axis=1)[:, :5])]
    assert np.mean(hits) > 4.5
    assert knn.ivf_sizes(94_000) == (1226, 76) and knn.ivf_sizes(1_000) == (25, 8)


def test_bad_knn_mode_is_rejected():
    q, g, _ = _clustered(3, n=60, nq=10)
    with pytest.raises(ValueError, match="knn_mode"):
        re_rank_features(q, g, knn_mode="hnsw")

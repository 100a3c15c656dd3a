"""distance_matrix: euclidean / squared / cosine against brute force, blockwise, input checks."""

import numpy as np
import pytest
import tensorflow as tf

from sal_tf.evaluation import distance_matrix


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_pairwise_distance_matches_brute_force(metric):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((13, 7))
    g = rng.standard_normal((29, 7))
    g[3] = 0.0  # a zero row: cosine distance 1
    diff = np.linalg.norm(q[:, None] - g[None], axis=-1)
    cos = (q @ g.T) / np.maximum(np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(g, axis=1)[None], 1e-12)
    expected = {"euclidean": diff, "sqeuclidean": diff**2, "cosine": 1 - cos}[metric]
    got = distance_matrix(tf.constant(q, tf.float32), g, metric=metric, block_size=4)
    assert got.dtype == np.float32 and got.shape == (13, 29)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    if metric == "cosine":
        np.testing.assert_allclose(got[:, 3], 1.0)


def test_pairwise_distance_self_is_zero_and_nonnegative():
    x = np.random.default_rng(1).standard_normal((20, 64)).astype(np.float32) * 100
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        d = distance_matrix(x, x, metric)
        assert (d >= 0).all()
    np.testing.assert_allclose(np.diag(distance_matrix(x, x, "cosine")), 0.0, atol=1e-6)


def test_pairwise_distance_rejects_bad_input():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="metric"):
        distance_matrix(x, x, metric="l1")
    with pytest.raises(ValueError, match="feature dimension"):
        distance_matrix(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="2-D"):
        distance_matrix(np.zeros(4), x)
    with pytest.raises(ValueError, match="NaN"):
        distance_matrix(np.full((2, 4), np.nan), x)


def test_search_distances_on_unit_rows_and_the_one_matrix_check():
    """`normalise` / `to_distance` (what searches report) agree with `distance_matrix`; `as_matrix` names the argument."""
    from sal_tf.evaluation.distance import as_matrix, check_distance, normalise, to_distance

    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6)) * 10.0
    x[2] = 0.0
    unit = normalise(x)
    assert unit.dtype == np.float32 and unit.flags.c_contiguous and not unit[2].any()
    np.testing.assert_allclose(np.linalg.norm(unit[[0, 1, 3, 4]], axis=1), 1.0, atol=1e-6)
    ip = unit @ unit.T
    for metric in ("euclidean", "cosine"):
        np.testing.assert_allclose(
            to_distance(ip[:2, 3:], metric), distance_matrix(unit[:2], unit[3:], metric), atol=1e-5
        )
    with pytest.raises(ValueError, match=r"`queries` must be a \[count, dim\] matrix. Received shape: \(6,\)"):
        normalise(np.ones(6), "queries")
    with pytest.raises(ValueError, match="`x` contains NaN"):
        normalise(np.full((1, 2), np.inf), "x")
    with pytest.raises(ValueError, match="`distmat` must be numeric"):
        as_matrix(np.array([["a"]]), "distmat")
    with pytest.raises(ValueError, match=r"`e` must be a \[count, 4\] matrix"):
        as_matrix(np.ones((2, 3)), "e", "[count, 4]", columns=4)
    with pytest.raises(ValueError, match=r"`d` must be a 3×3 matrix. Received shape: \(2, 3\)"):
        as_matrix(np.ones((2, 3)), "d", "3×3", rows=3, columns=3)
    with pytest.raises(ValueError, match=r"`d` must be a 3×3 matrix. Received shape: \(9,\)"):
        as_matrix(np.ones(9), "d", "3×3", rows=3, columns=3)
    with pytest.raises(ValueError, match="`distance` must be one of"):
        check_distance("manhattan")

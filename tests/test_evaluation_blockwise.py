"""evaluate_features: blockwise from embeddings equals the full distance-matrix path."""

import numpy as np
import pytest

from sal_tf.evaluation import distance_matrix, evaluate_features, evaluate_rank
from sal_tf.evaluation.blockwise import block_rows


def _case(rng, nq=40, ng=150, dim=6, integer=True):
    if integer:  # exact distances in any summation order: equal ties in both paths
        q = rng.integers(0, 3, (nq, dim)).astype(np.float32)
        g = rng.integers(0, 3, (ng, dim)).astype(np.float32)
    else:
        q = rng.standard_normal((nq, dim)).astype(np.float32)
        g = rng.standard_normal((ng, dim)).astype(np.float32)
    labels = (rng.integers(-1, 10, nq), rng.integers(-1, 10, ng), rng.integers(0, 3, nq), rng.integers(0, 3, ng))
    return q, g, labels


def _same(a, b):
    np.testing.assert_array_equal(a.all_AP, b.all_AP)
    np.testing.assert_array_equal(a.all_INP, b.all_INP)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    np.testing.assert_array_equal(a.valid, b.valid)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("method", ["count", "sort"])
@pytest.mark.parametrize("max_memory", [None, 1, 4 * 150 * 7])  # whole matrix, 1 row, 7 rows per block
def test_blockwise_equals_full_matrix(metric, method, max_memory):
    rng = np.random.default_rng(0)
    q, g, labels = _case(rng)
    if metric == "cosine":  # four ones in eight dims: normalised entries 0.5, exact cosines
        q, g = (np.stack([rng.permutation(8) < 4 for _ in x]).astype(np.float32) for x in (q, g))
    ref = evaluate_rank(distance_matrix(q, g, metric), *labels, max_rank=20, method="sort")
    got = evaluate_features(q, g, *labels, metric=metric, max_rank=20, method=method, max_memory=max_memory)
    _same(got, ref)


@pytest.mark.parametrize("ap", ["noninterpolated", "official"])
def test_blockwise_on_float_features(ap):
    rng = np.random.default_rng(1)
    q, g, labels = _case(rng, nq=60, ng=300, dim=16, integer=False)
    ref = evaluate_rank(distance_matrix(q, g), *labels, ap=ap)
    got = evaluate_features(q, g, *labels, ap=ap, max_memory=4 * 300 * 13)
    _same(got, ref)


def test_block_rows_follow_the_memory_limit():
    assert block_rows(100, 1000, max_memory=4 * 1000 * 100) == 100  # fits: one block
    assert block_rows(100, 1000, max_memory=4 * 1000 * 30) == 30
    assert block_rows(100, 1000, max_memory=1) == 1  # at least one row
    # MSMT17 size within 1 GiB per block: 3,267 rows of 82,161 (4 blocks, not 3.8 GB at once)
    assert block_rows(11659, 82161, max_memory=1 << 30) == (1 << 30) // (4 * 82161)
    assert block_rows(11659, 82161, max_memory=1 << 40, method="sort") == (4 << 20) // 82161


def test_bad_input_is_rejected():
    rng = np.random.default_rng(2)
    q, g, labels = _case(rng, nq=5, ng=8)
    with pytest.raises(ValueError, match="feature dimension"):
        evaluate_features(q, g[:, :3], *labels)
    with pytest.raises(ValueError, match="g_pids"):
        evaluate_features(q, g, labels[0], labels[1][:7], *labels[2:])
    with pytest.raises(ValueError, match="max_memory"):
        evaluate_features(q, g, *labels, max_memory=0)
    with pytest.raises(ValueError, match="metric"):
        evaluate_features(q, g, *labels, metric="l1")
    with pytest.raises(ValueError, match="NaN"):
        evaluate_features(np.full_like(q, np.nan), g, *labels)

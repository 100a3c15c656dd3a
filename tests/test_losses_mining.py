"""sal_tf.losses.mining: batch distances, hardest-negative ties, zero-distance gradients, compute dtype
and input checks, seen through the losses that use them (references: `tests/loss_references.py`)."""

import keras
import numpy as np
import pytest
from keras import ops

from sal_tf.losses import (
    QuadrupletHardLoss,
    SALObjective,
    SelfAttentionConstraint,
    TripletHardLoss,
    batch_distances,
    mining,
    quadruplet_hard_terms,
    triplet_hard_terms,
)
from tests.loss_references import (
    ATOL,
    backend_jit,
    clustered_batch,
    quad_terms,
    random_batch,
    ref_distance,
    ref_quadruplet,
    to_numpy,
    value_and_grad,
)


def test_ref_pairwise_distance_exact_for_duplicates():
    labels, x = random_batch(0, dim=64)
    x[5] = x[9]
    d = to_numpy(batch_distances(x))
    np.testing.assert_allclose(d, ref_distance(x), atol=ATOL, rtol=0)
    assert d[5, 9] == 0.0 and d[9, 5] == 0.0 and np.all(np.diag(d) == 0.0)


def test_ref_tie_break_is_lowest_index():
    # Anchor 0 (id 0, at 0; positive at 0.25) has two nearest negatives at distance 1: index 1
    # (id 1, at +1) and index 2 (id 2, at -1). Lowest index -> k = 1 -> h over ids {2, 3} nearest
    # to +1 is index 3 (at 1.5): d_kh = 0.5, term2 = 0.25 - 0.5 + 1 = 0.75. With k = 2 it would be
    # h over ids {1, 3} nearest to -1 (index 1): d_kh = 2, term2 = 0.
    labels = np.array([0, 1, 2, 3, 0], np.int32)
    x = np.array([[0.0], [1.0], [-1.0], [1.5], [0.25]], np.float32)
    term1, term2 = (to_numpy(t) for t in quad_terms(labels, x, 1.0, 1.0))
    want1, want2 = ref_quadruplet(labels, x, 1.0, 1.0)
    assert term1[0] == pytest.approx(0.25, abs=ATOL) and want1[0] == pytest.approx(0.25)
    assert term2[0] == pytest.approx(0.75, abs=ATOL) and want2[0] == pytest.approx(0.75)
    np.testing.assert_allclose(term1, want1, atol=ATOL)
    np.testing.assert_allclose(term2, want2, atol=ATOL)
    _, negative = mining.label_masks(labels)
    _, nearest, _ = mining.hardest_negative(batch_distances(x), negative)
    assert to_numpy(nearest)[0] == 1


def _objective_fn(labels, logits, att, metric):
    objective = SALObjective(metric=metric)
    return lambda x: objective(labels, {"logits": logits, "embedding": x, "attention": att})["loss"]


@pytest.mark.parametrize("metric", ["quadruplet", "triplet"])
def test_ref_gradients_finite_at_zero_distance(metric):
    labels = np.array([0, 0, 1, 1, 2, 2], np.int32)
    identical = np.ones((6, 4), np.float32)  # every pairwise distance is 0
    duplicates = np.repeat(np.arange(3, dtype=np.float32), 2)[:, None] * np.ones((1, 4), np.float32)
    logits = np.zeros((6, 3), np.float32)
    att = np.ones((6, 3, 4), np.float32) / 2.0
    for x in (identical, duplicates):
        value, grad = value_and_grad(_objective_fn(labels, logits, att, metric), x)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), grad
    # With identical embeddings every hinge is at its margin: the value is still exact.
    value, _ = value_and_grad(lambda x: ops.mean(ops.add(*quadruplet_hard_terms(labels, x))), identical)
    assert value == pytest.approx(0.5 + 0.2)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_ref_mixed_precision_inputs_compute_in_float32(dtype):
    labels, x = clustered_batch(0, num_ids=6, dim=32)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((len(labels), 6)).astype(np.float32)
    att = np.abs(rng.standard_normal((len(labels), 3, 8))).astype(np.float32)
    low = {k: ops.cast(v, dtype) for k, v in dict(logits=logits, embedding=x, attention=att).items()}
    widened = {k: ops.cast(v, "float32") for k, v in low.items()}  # the same values in float32
    objective = backend_jit(SALObjective())
    got, want = objective(labels, low), objective(labels, widened)
    for key in want:
        assert keras.backend.standardize_dtype(got[key].dtype) == "float32", key
        assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-6, abs=1e-6), key
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(f"mixed_{dtype}")
    try:
        for loss in (QuadrupletHardLoss(), TripletHardLoss()):
            value = loss(labels, low["embedding"])
            assert keras.backend.standardize_dtype(value.dtype) == "float32"
            assert float(value) == pytest.approx(float(loss(labels, widened["embedding"])), abs=1e-6)
        value = SelfAttentionConstraint()(None, low["attention"])
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
    finally:
        keras.config.set_dtype_policy(policy)


def test_bad_embedding_and_label_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match=r"embeddings.*\[B, D\]"):
        quadruplet_hard_terms(np.zeros(2, np.int32), np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"labels.*\[B\]"):
        triplet_hard_terms(np.zeros((2, 2), np.int32), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"embeddings.*\[B, D\]"):
        batch_distances(np.zeros((2, 3, 4), np.float32))

"""Tests of sal_tf.losses against brute-force float64 references written with explicit loops.

Tie-break convention (shared by the loss and `ref_quadruplet`): the nearest negative k of an anchor
is the lowest index among the tied nearest negatives. The farthest positive j and the nearest h only
enter through their distances, so their ties do not change the value.

Tests named `test_ref_*` are backend-agnostic; `test_jax_backend_passes_the_reference_tests` reruns them in a
subprocess with KERAS_BACKEND=jax.
"""

import importlib.util
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import ops

from sal_tf.losses import (
    QuadrupletHardLoss,
    SALObjective,
    SelfAttentionConstraint,
    TripletHardLoss,
    batch_distances,
    quadruplet_hard_terms,
    self_attention_constraint_terms,
    triplet_hard_terms,
)

BACKEND = keras.backend.backend()
ATOL = 1e-5
HYPOTHESIS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


# ----------------------------------------------------------------------------------------------
# float64 brute-force references
# ----------------------------------------------------------------------------------------------
def ref_distance(x):
    x = np.asarray(x, np.float64)
    b = len(x)
    d = np.zeros((b, b))
    for i in range(b):
        for j in range(b):
            d[i, j] = np.sqrt(np.sum((x[i] - x[j]) ** 2))
    return d


def ref_quadruplet(labels, x, margin1=0.5, margin2=0.2):
    """(term1, term2) per anchor; k = lowest index among the nearest negatives."""
    labels = list(np.asarray(labels).reshape(-1))
    d = ref_distance(x)
    b = len(labels)
    term1, term2 = np.zeros(b), np.zeros(b)
    for i in range(b):
        d_ij = None
        for j in range(b):
            if j != i and labels[j] == labels[i] and (d_ij is None or d[i, j] > d_ij):
                d_ij = d[i, j]
        k = None
        for c in range(b):
            if labels[c] != labels[i] and (k is None or d[i, c] < d[i, k]):
                k = c  # strict '<': the lowest index wins a tie
        if d_ij is None or k is None:
            continue
        term1[i] = max(0.0, d_ij - d[i, k] + margin1)
        d_kh = None
        for h in range(b):
            if labels[h] != labels[k] and labels[h] != labels[i]:
                if d_kh is None or d[k, h] < d_kh:
                    d_kh = d[k, h]
        if d_kh is not None:
            term2[i] = max(0.0, d_ij - d_kh + margin2)
    return term1, term2


def ref_triplet(labels, x, margin=0.5):
    labels = list(np.asarray(labels).reshape(-1))
    d = ref_distance(x)
    b = len(labels)
    out = np.zeros(b)
    for i in range(b):
        positives = [d[i, j] for j in range(b) if j != i and labels[j] == labels[i]]
        negatives = [d[i, k] for k in range(b) if labels[k] != labels[i]]
        if positives and negatives:
            out[i] = max(0.0, max(positives) - min(negatives) + margin)
    return out


def ref_sac(attention):
    attention = np.asarray(attention, np.float64)
    out = np.zeros(len(attention))
    for n, (a4, a5, a6) in enumerate(attention):
        for p in range(attention.shape[-1]):
            out[n] += (a6[p] - a5[p]) ** 2 + (a6[p] - a4[p]) ** 2
    return out


def ref_softmax(labels, logits):
    logits = np.asarray(logits, np.float64)
    out = []
    for row, y in zip(logits, labels):
        top = row.max()
        out.append(-(row[y] - top - np.log(np.sum(np.exp(row - top)))))
    return float(np.mean(out))


# ----------------------------------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------------------------------
def random_batch(seed, num_ids=18, per_id=4, dim=256):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_ids, size=num_ids * per_id)
    return labels.astype(np.int32), rng.standard_normal((len(labels), dim)).astype(np.float32)


def clustered_batch(seed, num_ids=18, per_id=4, dim=256):
    """P x K batch: unit-norm-scale centres, a per-id spread in [0.2, 1.2]; hinges partly active."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, dim)) / np.sqrt(dim)
    spread = rng.uniform(0.2, 1.2, size=num_ids)
    labels = np.repeat(np.arange(num_ids), per_id)
    noise = rng.standard_normal((len(labels), dim)) / np.sqrt(dim)
    x = centres[labels] + spread[labels, None] * noise
    order = rng.permutation(len(labels))
    return labels[order].astype(np.int32), x[order].astype(np.float32)


@st.composite
def grid_batches(draw, labels_strategy=None):
    """Small batches with integer-grid embeddings scaled by 2**e: many exact ties and duplicates.

    Squared distances are exact in float32 and float64, so both orders agree on every tie.
    """
    size = draw(st.integers(1, 8))
    if labels_strategy is None:
        labels = draw(st.lists(st.integers(0, 3), min_size=size, max_size=size))
    else:
        labels = draw(labels_strategy(size))
    dim = 2
    cells = draw(st.lists(st.integers(-2, 2), min_size=size * dim, max_size=size * dim))
    scale = 2.0 ** draw(st.integers(-3, 3))
    x = np.asarray(cells, np.float32).reshape(size, dim) * scale
    return np.asarray(labels, np.int32), x


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def backend_jit(fn):
    """jax: `jax.jit` (one compile per input shape instead of one per op and shape, which makes
    the jax copy of these tests 5x faster); tensorflow: `fn` itself, run eagerly."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


quad_terms = backend_jit(quadruplet_hard_terms)
trip_terms = backend_jit(triplet_hard_terms)


def assert_quadruplet_matches(labels, x, margin1=0.5, margin2=0.2, check_loss_class=False):
    term1, term2 = quad_terms(labels, x, margin1, margin2)
    want1, want2 = ref_quadruplet(labels, x, margin1, margin2)
    np.testing.assert_allclose(_np(term1), want1, atol=ATOL, rtol=0)
    np.testing.assert_allclose(_np(term2), want2, atol=ATOL, rtol=0)
    if check_loss_class:
        loss = QuadrupletHardLoss(margin1, margin2)(labels, x)
        np.testing.assert_allclose(float(loss), np.mean(want1 + want2), atol=ATOL, rtol=0)
    return want1, want2


def assert_triplet_matches(labels, x, margin=0.5, check_loss_class=False):
    want = ref_triplet(labels, x, margin)
    np.testing.assert_allclose(_np(trip_terms(labels, x, margin)), want, atol=ATOL, rtol=0)
    if check_loss_class:
        loss = TripletHardLoss(margin)(labels, x)
        np.testing.assert_allclose(float(loss), np.mean(want), atol=ATOL, rtol=0)
    return want


# ----------------------------------------------------------------------------------------------
# value tests against the references (backend-agnostic: test_ref_*)
# ----------------------------------------------------------------------------------------------
def test_ref_pairwise_distance_exact_for_duplicates():
    labels, x = random_batch(0, dim=64)
    x[5] = x[9]
    d = _np(batch_distances(x))
    np.testing.assert_allclose(d, ref_distance(x), atol=ATOL, rtol=0)
    assert d[5, 9] == 0.0 and d[9, 5] == 0.0 and np.all(np.diag(d) == 0.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_ref_random_batches(seed):
    labels, x = random_batch(seed)
    want1, want2 = assert_quadruplet_matches(labels, x, check_loss_class=True)
    assert want1.max() > 0  # random ids: hinges are active, so the check is not vacuous
    assert_triplet_matches(labels, x, check_loss_class=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_ref_clustered_batches(seed):
    labels, x = clustered_batch(seed)
    want1, want2 = assert_quadruplet_matches(labels, x, margin1=0.4, check_loss_class=True)
    # The clusters are tuned so that each term is active for some anchors and zero for others.
    for want in (want1, want2):
        assert 0.0 < np.mean(want > 0) < 1.0, np.mean(want > 0)
    assert_triplet_matches(labels, x, margin=0.3, check_loss_class=True)


@HYPOTHESIS
@given(grid_batches())
def test_ref_property_duplicates_and_ties(batch):
    labels, x = batch
    assert_quadruplet_matches(labels, x)
    assert_quadruplet_matches(labels, x, margin1=0.0, margin2=1.5)
    assert_triplet_matches(labels, x)


@HYPOTHESIS
@given(grid_batches(labels_strategy=lambda size: st.just([7] * size)))
def test_ref_property_one_id_only(batch):
    labels, x = batch
    want1, want2 = assert_quadruplet_matches(labels, x)
    want = assert_triplet_matches(labels, x)
    assert not want1.any() and not want2.any() and not want.any()  # no negatives: all zero


@HYPOTHESIS
@given(grid_batches(labels_strategy=lambda size: st.permutations(list(range(size)))))
def test_ref_property_every_id_once(batch):
    labels, x = batch
    want1, want2 = assert_quadruplet_matches(labels, x)
    want = assert_triplet_matches(labels, x)
    assert not want1.any() and not want2.any() and not want.any()  # no positives: all zero


@HYPOTHESIS
@given(st.integers(0, 2**31 - 1), st.integers(2, 8), st.integers(1, 4))
def test_ref_property_random_floats(seed, size, num_ids):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_ids, size=size).astype(np.int32)
    x = rng.standard_normal((size, 2)).astype(np.float32)
    duplicated = rng.integers(0, size)
    x[duplicated] = x[0]  # sometimes a duplicate embedding of another id, sometimes of the same
    assert_quadruplet_matches(labels, x)
    assert_triplet_matches(labels, x)


def test_ref_tie_break_is_lowest_index():
    # Anchor 0 (id 0, at 0; positive at 0.25) has two nearest negatives at distance 1: index 1
    # (id 1, at +1) and index 2 (id 2, at -1). Lowest index -> k = 1 -> h over ids {2, 3} nearest
    # to +1 is index 3 (at 1.5): d_kh = 0.5, term2 = 0.25 - 0.5 + 1 = 0.75. With k = 2 it would be
    # h over ids {1, 3} nearest to -1 (index 1): d_kh = 2, term2 = 0.
    labels = np.array([0, 1, 2, 3, 0], np.int32)
    x = np.array([[0.0], [1.0], [-1.0], [1.5], [0.25]], np.float32)
    term1, term2 = (_np(t) for t in quad_terms(labels, x, 1.0, 1.0))
    want1, want2 = ref_quadruplet(labels, x, 1.0, 1.0)
    assert term1[0] == pytest.approx(0.25, abs=ATOL) and want1[0] == pytest.approx(0.25)
    assert term2[0] == pytest.approx(0.75, abs=ATOL) and want2[0] == pytest.approx(0.75)
    np.testing.assert_allclose(term1, want1, atol=ATOL)
    np.testing.assert_allclose(term2, want2, atol=ATOL)


def test_ref_self_attention_constraint():
    rng = np.random.default_rng(3)
    att = np.abs(rng.standard_normal((5, 3, 32))).astype(np.float32)
    att /= np.linalg.norm(att, axis=-1, keepdims=True)
    want = ref_sac(att)
    np.testing.assert_allclose(_np(self_attention_constraint_terms(att)), want, atol=ATOL)
    for y_true in (None, np.zeros(5), "ignored"):
        np.testing.assert_allclose(float(SelfAttentionConstraint()(y_true, att)), want.mean(), atol=ATOL)
    same = np.repeat(att[:, :1], 3, axis=1)
    assert float(SelfAttentionConstraint()(None, same)) == 0.0


def mining_case():
    """1-D embeddings worked by hand (margins 0.5, 0.2).

    anchor  x    j(d_ij)   k(d_ik)   h(d_kh)   term1  term2
      0    0.0   1 (2.0)   2 (2.3)   4 (3.3)   0.2    0
      1    2.0   0 (2.0)   2 (0.3)   4 (3.3)   2.2    0
      2    2.3   3 (2.7)   1 (0.3)   4 (3.6)   2.9    0
      3    5.0   2 (2.7)   4 (0.6)   1 (3.6)   2.6    0
      4    5.6   5 (3.4)   3 (0.6)   1 (3.0)   3.3    0.6
      5    9.0   4 (3.4)   3 (4.0)   1 (3.0)   0      0.6
    """
    labels = np.array([0, 0, 1, 1, 2, 2], np.int32)
    x = np.array([[0.0], [2.0], [2.3], [5.0], [5.6], [9.0]], np.float32)
    term1 = np.array([0.2, 2.2, 2.9, 2.6, 3.3, 0.0])
    term2 = np.array([0.0, 0.0, 0.0, 0.0, 0.6, 0.6])
    return labels, x, term1, term2


def test_ref_mining_statistics_on_constructed_case():
    labels, x, term1, term2 = mining_case()
    got1, got2 = quad_terms(labels, x, 0.5, 0.2)
    np.testing.assert_allclose(_np(got1), term1, atol=ATOL)
    np.testing.assert_allclose(_np(got2), term2, atol=ATOL)

    logits = np.zeros((6, 3), np.float32)
    logits[np.arange(6), [0, 0, 1, 2, 2, 1]] = 2.0  # correct for anchors 0, 1, 2, 4: 4/6
    rng = np.random.default_rng(0)
    att = np.abs(rng.standard_normal((6, 3, 4))).astype(np.float32)
    outputs = {"logits": logits, "embedding": x, "attention": att}

    quad = SALObjective(softmax_weight=2.0, metric_weight=0.5, sac_weight=3.0)(labels, outputs)
    assert set(quad) == {
        "loss",
        "softmax",
        "accuracy",
        "quadruplet",
        "quadruplet_active_1",
        "quadruplet_active_2",
        "sac",
    }
    assert float(quad["quadruplet_active_1"]) == pytest.approx(5 / 6)
    assert float(quad["quadruplet_active_2"]) == pytest.approx(2 / 6)
    assert float(quad["accuracy"]) == pytest.approx(4 / 6)
    assert float(quad["quadruplet"]) == pytest.approx((term1 + term2).mean(), abs=ATOL)
    assert float(quad["softmax"]) == pytest.approx(ref_softmax(labels, logits), abs=ATOL)
    assert float(quad["sac"]) == pytest.approx(ref_sac(att).mean(), abs=ATOL)
    want_total = 2.0 * ref_softmax(labels, logits) + 0.5 * (term1 + term2).mean() + 3.0 * ref_sac(att).mean()
    assert float(quad["loss"]) == pytest.approx(want_total, abs=ATOL)
    for value in quad.values():
        assert keras.backend.standardize_dtype(value.dtype) == "float32" and tuple(value.shape) == ()

    trip = SALObjective(softmax=False, metric="triplet", sac=False)(labels, outputs)
    assert set(trip) == {"loss", "triplet", "triplet_active"}
    assert float(trip["triplet_active"]) == pytest.approx(5 / 6)
    assert float(trip["loss"]) == pytest.approx(term1.mean(), abs=ATOL)

    stage1 = SALObjective(metric=None)(labels, {"logits": logits, "attention": att})
    assert set(stage1) == {"loss", "softmax", "accuracy", "sac"}


# ----------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------
def value_and_grad(fn, x):
    """(fn(x), d fn / d x) on the active backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return _np(value), _np(tape.gradient(value, x))
    if BACKEND == "jax":
        import jax

        value, grad = jax.jit(jax.value_and_grad(fn))(ops.convert_to_tensor(x))
        return _np(value), _np(grad)
    pytest.skip(f"no gradient helper for backend {BACKEND}")


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


def _mean(values):
    # ops.mean is avoided here: Keras 3.15's JAX backend averages float64 in float32.
    return ops.sum(values) / values.shape[0]


def _finite_difference(fn, x, step=1e-6):
    fn = backend_jit(fn)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (float(_np(fn(up))) - float(_np(fn(down)))) / (2 * step)
    return grad


def _need_float64(x):
    if keras.backend.standardize_dtype(ops.convert_to_tensor(x).dtype) != "float64":
        pytest.skip("float64 is disabled on this backend (set JAX_ENABLE_X64=1 for jax)")


@pytest.mark.parametrize(
    "name, fn",
    [
        ("quadruplet", lambda labels: lambda x: _mean(ops.add(*quadruplet_hard_terms(labels, x, 0.5, 0.2)))),
        ("triplet", lambda labels: lambda x: _mean(triplet_hard_terms(labels, x, 0.5))),
    ],
)
def test_ref_gradients_match_finite_differences(name, fn):
    rng = np.random.default_rng(7)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3], np.int32)
    x = rng.standard_normal((8, 5)) * 0.3  # float64, small spread: most hinges active
    _need_float64(x)
    loss = fn(labels)
    value, grad = value_and_grad(loss, x)
    assert value > 0 and np.abs(grad).max() > 0
    np.testing.assert_allclose(grad, _finite_difference(loss, x), atol=1e-6, rtol=1e-5)


def test_ref_sac_gradient_matches_finite_differences():
    rng = np.random.default_rng(8)
    att = rng.standard_normal((2, 3, 5))
    _need_float64(att)
    loss = lambda a: _mean(self_attention_constraint_terms(a))  # noqa: E731
    _, grad = value_and_grad(loss, att)
    np.testing.assert_allclose(grad, _finite_difference(loss, att), atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# precision, XLA, config, input checks
# ----------------------------------------------------------------------------------------------
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


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.function(jit_compile=True) is TensorFlow's")
def test_xla_jit_compile_matches_eager():
    import tensorflow as tf

    labels, x = clustered_batch(1, num_ids=8, dim=16)
    rng = np.random.default_rng(1)
    outputs = {
        "logits": rng.standard_normal((len(labels), 8)).astype(np.float32),
        "embedding": x,
        "attention": np.abs(rng.standard_normal((len(labels), 3, 8))).astype(np.float32),
    }
    x[3] = x[4]  # a zero distance inside the compiled graph as well
    for objective in (SALObjective(), SALObjective(metric="triplet")):

        @tf.function(jit_compile=True)
        def step(labels, outputs, objective=objective):
            with tf.GradientTape() as tape:
                tape.watch(outputs["embedding"])
                results = objective(labels, outputs)
            return results, tape.gradient(results["loss"], outputs["embedding"])

        tensors = {k: tf.constant(v) for k, v in outputs.items()}
        compiled, grad = step(tf.constant(labels), tensors)
        eager = objective(labels, outputs)
        assert set(compiled) == set(eager)
        for key in eager:
            assert float(compiled[key]) == pytest.approx(float(eager[key]), abs=1e-5), key
        assert np.all(np.isfinite(grad.numpy()))
    compiled_loss = tf.function(jit_compile=True)(QuadrupletHardLoss())
    assert float(compiled_loss(labels, x)) == pytest.approx(np.mean(np.add(*ref_quadruplet(labels, x))), abs=ATOL)


def test_get_config_round_trip():
    for loss in (
        QuadrupletHardLoss(margin1=0.7, margin2=0.1, name="quad"),
        TripletHardLoss(margin=0.3),
        SelfAttentionConstraint(name="sac"),
    ):
        config = keras.saving.serialize_keras_object(loss)
        assert config["registered_name"].startswith("sal_tf>")
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
        assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()
    objective = SALObjective(metric="triplet", sac=False, softmax_weight=0.5, triplet_margin=0.4)
    restored = SALObjective.from_config(objective.get_config())
    assert restored.get_config() == objective.get_config()
    assert restored.terms == ("softmax", "triplet")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(objective))
    assert isinstance(restored, SALObjective) and restored.get_config() == objective.get_config()


def test_terms():
    assert SALObjective(metric=None).terms == ("softmax", "sac")
    assert SALObjective(metric="quadruplet").terms == ("softmax", "quadruplet", "sac")
    assert SALObjective(metric="quadruplet", sac=False).terms == ("softmax", "quadruplet")
    assert SALObjective(metric="none").metric is None
    with pytest.raises(ValueError, match="metric"):
        SALObjective(metric="contrastive")


def test_sac_with_two_stage_maps_is_the_stage5_to_stage4_distance():
    """A model without stage6 has S = 2 maps: the deepest (stage5) guides stage4."""
    rng = np.random.default_rng(5)
    att = rng.random((4, 2, 12)).astype(np.float32)
    att /= np.linalg.norm(att, axis=-1, keepdims=True)
    expected = np.sum((att[:, 1] - att[:, 0]) ** 2, axis=-1)
    np.testing.assert_allclose(_np(self_attention_constraint_terms(att)), expected, rtol=1e-5, atol=ATOL)
    with pytest.raises(ValueError, match="S >= 2"):
        self_attention_constraint_terms(att[:, :1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(softmax=False, metric=None, sac=False), "at least one term"),
        (dict(metric="contrastive"), "metric"),
        (dict(margin1=-0.1), "margin1"),
        (dict(triplet_margin="big"), "triplet_margin"),
        (dict(sac_weight=-1.0), "sac_weight"),
    ],
)
def test_objective_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SALObjective(**kwargs)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="margin2"):
        QuadrupletHardLoss(margin2=-1)
    with pytest.raises(ValueError, match=r"attention.*\[B, S, HW\]"):
        self_attention_constraint_terms(np.zeros((2, 1, 4), np.float32))
    with pytest.raises(ValueError, match=r"embeddings.*\[B, D\]"):
        quadruplet_hard_terms(np.zeros(2, np.int32), np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"labels.*\[B\]"):
        triplet_hard_terms(np.zeros((2, 2), np.int32), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"outputs\['attention'\].*keys: \['embedding', 'logits'\]"):
        SALObjective()(np.zeros(2, np.int32), {"logits": np.zeros((2, 3)), "embedding": np.zeros((2, 4))})


@pytest.mark.skipif(BACKEND != "tensorflow", reason="this run is already the jax copy")
def test_jax_backend_passes_the_reference_tests():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: `pip install 'jax[cpu]'` to run the jax copy")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            os.path.abspath(__file__),
            "-o",
            "addopts=",
            "-q",
            "-k",
            "test_ref_",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
        ],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    summary = output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 15 and "skipped" not in summary, output[-2000:]

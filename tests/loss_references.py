"""Shared by the `tests/test_losses_*.py` files: brute-force float64 references written with explicit
loops, batch generators, hypothesis strategies and assert helpers for `sal_tf.losses`.

Tie-break convention (shared by the loss and `ref_quadruplet`): the nearest negative k of an anchor
is the lowest index among the tied nearest negatives. The farthest positive j and the nearest h only
enter through their distances, so their ties do not change the value.

Tests named `test_ref_*` are backend-agnostic; `tests/test_losses_jax.py` reruns them in a
subprocess with KERAS_BACKEND=jax.
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from keras import ops

from sal_tf.losses import QuadrupletHardLoss, TripletHardLoss, quadruplet_hard_terms, triplet_hard_terms

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


def one_id_batches():
    """`grid_batches` whose rows all share one id: no negatives."""
    return grid_batches(labels_strategy=lambda size: st.just([7] * size))


def distinct_id_batches():
    """`grid_batches` whose rows all have different ids: no positives."""
    return grid_batches(labels_strategy=lambda size: st.permutations(list(range(size))))


def random_float_batch(seed, size, num_ids):
    """Gaussian 2-d rows; row `duplicated` copies row 0 (sometimes of another id, sometimes of the same)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_ids, size=size).astype(np.int32)
    x = rng.standard_normal((size, 2)).astype(np.float32)
    duplicated = rng.integers(0, size)
    x[duplicated] = x[0]
    return labels, x


# ----------------------------------------------------------------------------------------------
# backend helpers
# ----------------------------------------------------------------------------------------------
def to_numpy(x):
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


def value_and_grad(fn, x):
    """(fn(x), d fn / d x) on the active backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return to_numpy(value), to_numpy(tape.gradient(value, x))
    if BACKEND == "jax":
        import jax

        value, grad = jax.jit(jax.value_and_grad(fn))(ops.convert_to_tensor(x))
        return to_numpy(value), to_numpy(grad)
    pytest.skip(f"no gradient helper for backend {BACKEND}")


def exact_mean(values):
    """Mean over axis 0 in the values' dtype.

    ops.mean is avoided here: Keras 3.15's JAX backend averages float64 in float32.
    """
    return ops.sum(values) / values.shape[0]


def finite_difference(fn, x, step=1e-6):
    fn = backend_jit(fn)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (float(to_numpy(fn(up))) - float(to_numpy(fn(down)))) / (2 * step)
    return grad


def need_float64(x):
    if keras.backend.standardize_dtype(ops.convert_to_tensor(x).dtype) != "float64":
        pytest.skip("float64 is disabled on this backend (set JAX_ENABLE_X64=1 for jax)")


def gradient_batch():
    """Labels [0, 0, 1, 1, 2, 2, 3, 3] and float64 [8, 5] embeddings with a small spread (most hinges active)."""
    rng = np.random.default_rng(7)
    return np.array([0, 0, 1, 1, 2, 2, 3, 3], np.int32), rng.standard_normal((8, 5)) * 0.3


def assert_gradient_matches_finite_differences(loss, x):
    """The gradient of the scalar `loss(x)` at float64 `x` is that of central finite differences
    (skipped where the backend has no float64); returns (value, gradient)."""
    need_float64(x)
    value, grad = value_and_grad(loss, x)
    np.testing.assert_allclose(grad, finite_difference(loss, x), atol=1e-6, rtol=1e-5)
    return value, grad


# ----------------------------------------------------------------------------------------------
# assert helpers
# ----------------------------------------------------------------------------------------------
def assert_quadruplet_matches(labels, x, margin1=0.5, margin2=0.2, check_loss_class=False):
    term1, term2 = quad_terms(labels, x, margin1, margin2)
    want1, want2 = ref_quadruplet(labels, x, margin1, margin2)
    np.testing.assert_allclose(to_numpy(term1), want1, atol=ATOL, rtol=0)
    np.testing.assert_allclose(to_numpy(term2), want2, atol=ATOL, rtol=0)
    if check_loss_class:
        loss = QuadrupletHardLoss(margin1, margin2)(labels, x)
        np.testing.assert_allclose(float(loss), np.mean(want1 + want2), atol=ATOL, rtol=0)
    return want1, want2


def assert_triplet_matches(labels, x, margin=0.5, check_loss_class=False):
    want = ref_triplet(labels, x, margin)
    np.testing.assert_allclose(to_numpy(trip_terms(labels, x, margin)), want, atol=ATOL, rtol=0)
    if check_loss_class:
        loss = TripletHardLoss(margin)(labels, x)
        np.testing.assert_allclose(float(loss), np.mean(want), atol=ATOL, rtol=0)
    return want


def assert_config_round_trip(loss):
    """A registered Keras loss survives serialize / deserialize and from_config(get_config())."""
    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"].startswith("sal_tf>")
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
    assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()

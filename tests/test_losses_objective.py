"""sal_tf.losses.objective (SALObjective, the paper's eq. 6): a hand-worked case with its mining
statistics, XLA against eager, config, terms and argument checks (references: `tests/loss_references.py`)."""

import keras
import numpy as np
import pytest

from sal_tf.losses import QuadrupletHardLoss, SALObjective
from tests.loss_references import (
    ATOL,
    BACKEND,
    clustered_batch,
    quad_terms,
    ref_quadruplet,
    ref_sac,
    ref_softmax,
    to_numpy,
)


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
    np.testing.assert_allclose(to_numpy(got1), term1, atol=ATOL)
    np.testing.assert_allclose(to_numpy(got2), term2, atol=ATOL)

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


def test_missing_output_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"outputs\['attention'\].*keys: \['embedding', 'logits'\]"):
        SALObjective()(np.zeros(2, np.int32), {"logits": np.zeros((2, 3)), "embedding": np.zeros((2, 4))})

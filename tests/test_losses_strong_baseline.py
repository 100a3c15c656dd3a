"""The strong baseline's losses (BoT, Luo et al. 2019) against their definitions: label smoothing
against the closed form and Keras' `CategoricalCrossentropy(label_smoothing)`, the center loss and
the soft-margin triplet against brute-force float64 loops, and `SALObjective`'s use of them."""

import keras
import numpy as np
import pytest

from sal_tf.losses import (
    CenterLoss,
    LabelSmoothingCrossEntropy,
    SALObjective,
    center_loss_terms,
    label_smoothed_cross_entropy,
    triplet_hard_terms,
)
from tests.loss_references import ref_distance


def ref_label_smoothing(labels, logits, eps):
    """−Σ_k q_k log p_k with q = (1 − ε)·one_hot + ε/K, one sample at a time (float64)."""
    out = []
    for y, z in zip(labels, np.asarray(logits, np.float64)):
        log_p = z - np.log(np.sum(np.exp(z - z.max()))) - z.max()
        q = np.full(len(z), eps / len(z))
        q[y] += 1 - eps
        out.append(-np.sum(q * log_p))
    return np.array(out)


def ref_center(labels, x, centers):
    return np.array([np.sum((np.float64(x[i]) - centers[y]) ** 2) for i, y in enumerate(labels)])


def ref_soft_triplet(labels, x):
    d = ref_distance(x)
    out = []
    for i, y in enumerate(labels):
        pos = [d[i, j] for j in range(len(labels)) if labels[j] == y and j != i]
        neg = [d[i, j] for j in range(len(labels)) if labels[j] != y]
        out.append(np.log1p(np.exp(max(pos) - min(neg))) if pos and neg else 0.0)
    return np.array(out)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_label_smoothing_is_the_closed_form(eps):
    rng = np.random.default_rng(0)
    labels, logits = rng.integers(0, 7, 9), rng.normal(0, 3, (9, 7)).astype("float32")
    got = np.asarray(label_smoothed_cross_entropy(labels, logits, eps))
    np.testing.assert_allclose(got, ref_label_smoothing(labels, logits, eps), rtol=1e-5)
    keras_ref = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=eps)(np.eye(7)[labels], logits)
    np.testing.assert_allclose(float(LabelSmoothingCrossEntropy(eps)(labels, logits)), float(keras_ref), rtol=1e-5)


def test_label_smoothing_changes_the_objective_softmax_term():
    rng = np.random.default_rng(1)
    labels, logits = rng.integers(0, 5, 8), rng.normal(0, 4, (8, 5)).astype("float32")
    outputs = {"logits": logits}
    plain = SALObjective(metric=None, sac=False)(labels, outputs)["softmax"]
    smooth = SALObjective(metric=None, sac=False, label_smoothing=0.1)(labels, outputs)["softmax"]
    np.testing.assert_allclose(float(plain), ref_label_smoothing(labels, logits, 0.0).mean(), rtol=1e-5)
    np.testing.assert_allclose(float(smooth), ref_label_smoothing(labels, logits, 0.1).mean(), rtol=1e-5)
    assert abs(float(smooth) - float(plain)) > 1e-3


def test_label_smoothing_rejects_bad_epsilon():
    with pytest.raises(ValueError, match=r"label_smoothing.*\[0, 1\)"):
        SALObjective(label_smoothing=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        LabelSmoothingCrossEntropy(epsilon=-0.1)


def test_center_loss_is_the_squared_distance_to_the_class_centre():
    rng = np.random.default_rng(2)
    labels, x = rng.integers(0, 4, 10), rng.normal(size=(10, 6)).astype("float32")
    layer = CenterLoss(num_classes=4, dim=6)
    centers = np.asarray(layer.centers, np.float64)
    want = ref_center(labels, x, centers)
    np.testing.assert_allclose(np.asarray(layer(labels, x)), want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(center_loss_terms(labels, x, centers)), want, rtol=1e-5)
    objective = SALObjective(metric=None, sac=False, center_weight=5e-4, centers=layer)
    logits = np.zeros((10, 4), "float32")
    terms = objective(labels, {"logits": logits, "embedding": x})
    assert objective.terms == ("softmax", "center")
    np.testing.assert_allclose(float(terms["center"]), want.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss"]), np.log(4) + 5e-4 * want.mean(), rtol=1e-5)


def test_center_weight_needs_centres():
    with pytest.raises(ValueError, match="needs `centers`"):
        SALObjective(center_weight=0.1)


def test_soft_margin_triplet_is_softplus_of_the_hardest_pair():
    rng = np.random.default_rng(3)
    labels, x = np.repeat(np.arange(3), 3), rng.normal(size=(9, 5)).astype("float32")
    got = np.asarray(triplet_hard_terms(labels, x, soft=True))
    np.testing.assert_allclose(got, ref_soft_triplet(labels, x), rtol=1e-5, atol=1e-6)
    hinge = np.asarray(triplet_hard_terms(labels, x, margin=0.3))
    assert not np.allclose(got, hinge)


def test_metric_and_center_terms_use_the_pre_bnneck_feature():
    """BoT: triplet and center loss on the feature before the BNNeck, the classifier after it."""
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(4), 2)
    pre, post = rng.normal(size=(8, 6)).astype("float32"), rng.normal(size=(8, 6)).astype("float32")
    layer = CenterLoss(num_classes=4, dim=6)
    objective = SALObjective(metric="triplet", sac=False, center_weight=1.0, centers=layer, triplet_margin=0.3)
    outputs = {"logits": np.zeros((8, 4), "float32"), "embedding": post, "pre_bn_embedding": pre}
    terms = objective(labels, outputs)
    np.testing.assert_allclose(float(terms["triplet"]), np.mean(triplet_hard_terms(labels, pre, 0.3)), rtol=1e-5)
    assert abs(float(terms["triplet"]) - float(np.mean(triplet_hard_terms(labels, post, 0.3)))) > 1e-3
    centers = np.asarray(layer.centers, np.float64)
    np.testing.assert_allclose(float(terms["center"]), ref_center(labels, pre, centers).mean(), rtol=1e-5)


def test_config_round_trip_keeps_the_options():
    objective = SALObjective(metric="triplet", label_smoothing=0.1, triplet_soft_margin=True)
    again = SALObjective.from_config(objective.get_config())
    assert again.get_config() == objective.get_config()
    assert again.label_smoothing == 0.1 and again.triplet_soft_margin

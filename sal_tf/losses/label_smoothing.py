"""Label-smoothed cross-entropy (Szegedy et al. 2016), the identity loss of BoT (Luo et al. 2019, ε = 0.1).

With K classes the one-hot target y becomes q = (1 − ε)·y + ε/K, so per sample

    loss = −Σ_k q_k log p_k = (1 − ε)·(−log p_label) + ε · mean_k(−log p_k),

the semantics of `keras.losses.CategoricalCrossentropy(label_smoothing=ε, from_logits=True)` on
one-hot labels, here on integer labels. ε = 0 is the plain softmax cross-entropy of the paper.
"""

import keras
from keras import ops

from sal_tf.losses import mining


def check_epsilon(value, name="label_smoothing"):
    """ε is a number in [0, 1)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}") from None
    if not 0 <= value < 1:
        raise ValueError(f"`{name}` must be in [0, 1) (BoT: 0.1). Received: {name}={value}")
    return value


def label_smoothed_cross_entropy(labels, logits, epsilon=0.1):
    """Per-sample label-smoothed cross-entropy `[B]` (float32) of integer `labels` [B] and `logits` [B, K]."""
    labels = mining.as_labels(labels)
    logits = ops.cast(logits, "float32")
    log_p = ops.log_softmax(logits, axis=-1)
    one_hot = ops.one_hot(labels, ops.shape(logits)[-1], dtype="float32")
    nll = -ops.sum(one_hot * log_p, axis=-1)
    uniform = -ops.mean(log_p, axis=-1)
    return (1.0 - epsilon) * nll + epsilon * uniform


@keras.saving.register_keras_serializable(package="sal_tf")
class LabelSmoothingCrossEntropy(keras.losses.Loss):
    """Label-smoothed cross-entropy on logits; `y_true` integer ids `[B]`, `y_pred` logits `[B, K]`.

    Args:
        epsilon: ε in [0, 1), default 0.1 (BoT).

    Example:
        >>> loss = LabelSmoothingCrossEntropy(epsilon=0.0)
        >>> round(float(loss([0], [[0.0, 0.0]])), 4)  # log 2
        0.6931
    """

    def __init__(self, epsilon=0.1, name="label_smoothing_cross_entropy", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = check_epsilon(epsilon, "epsilon")

    def call(self, y_true, y_pred):
        return label_smoothed_cross_entropy(y_true, y_pred, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}

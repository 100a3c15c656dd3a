"""Self-attention constraint (paper eq. 2, §3.2).

`attention` is the model's `[B, S, HW]` output, rows in stage order (stage4, stage5, stage6), each
row already L2-normalised over the HW positions (eq. 1). Per sample, the last (deepest) map
guides the others:
  L_sac = ||att6 - att5||^2 + ||att6 - att4||^2   (S = 3: eq. 2; squared L2 over positions),
  L_sac = ||att5 - att4||^2                        (S = 2: a model without stage6),
and the batch loss is the mean over samples. Gradients flow into all three maps (the stages learn
from each other; nothing is stopped).
"""

import keras
from keras import ops

from sal_tf.losses import mining


def self_attention_constraint_terms(attention):
    """Per-sample constraint `[B]` from attention maps `[B, S, HW]`, S >= 2 stages in order."""
    attention = mining.as_float(attention)
    if len(attention.shape) != 3 or attention.shape[1] is None or attention.shape[1] < 2:
        raise ValueError(
            "`attention` must have shape [B, S, HW] with S >= 2 stage maps (stage4, stage5[, stage6]). "
            f"Received: shape={tuple(attention.shape)}"
        )
    last = attention[:, -1:]
    return ops.sum(ops.square(last - attention[:, :-1]), axis=(1, 2))


@keras.saving.register_keras_serializable(package="sal_tf")
class SelfAttentionConstraint(keras.losses.Loss):
    """Self-attention constraint; `y_pred` = attention `[B, 3, HW]`, `y_true` is ignored.

    Example:
        >>> att = [[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]]  # stage5 differs from stage6
        >>> float(SelfAttentionConstraint()(None, att))
        2.0
    """

    def __init__(self, name="self_attention_constraint", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # y_true may be None or anything (e.g. the ids of the batch); it is not used.
        return super().__call__(0.0, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return self_attention_constraint_terms(y_pred)

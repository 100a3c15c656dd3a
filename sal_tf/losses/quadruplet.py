"""Quadruplet-hard loss (paper eq. 5, §3.3), mined inside the batch.

For anchor i (d = Euclidean distance, not squared):
  j = farthest positive of i (same id, j != i);
  k = nearest negative of i (lowest index on ties);
  h = the sample nearest to k with y_h != y_k and y_h != y_i;
  loss_i = [d_ij - d_ik + margin1]+  +  [d_ij - d_kh + margin2]+.
The batch loss is the mean of loss_i over all B anchors, zeros included. A term whose samples do
not exist (no positive, no negative, no valid h) is 0 for that anchor.
"""

import keras
from keras import ops

from sal_tf.losses import mining
from sal_tf.utils.checks import check_non_negative


def quadruplet_hard_terms(labels, embeddings, margin1=0.5, margin2=0.2):
    """Per-anchor quadruplet-hard terms `(term1 [B], term2 [B])`.

    Args:
        labels: integer ids `[B]`.
        embeddings: `[B, D]`.
        margin1: margin of the triplet term (paper's epsilon_1).
        margin2: margin of the added term (paper's epsilon_2).

    Returns:
        term1 = [d_ij - d_ik + margin1]+ and term2 = [d_ij - d_kh + margin2]+, float32 (float64
        for float64 input).
    """
    labels = mining.as_labels(labels)
    distance = mining.batch_distances(embeddings)
    positive, negative = mining.label_masks(labels)
    d_ap, has_positive = mining.hardest_positive(distance, positive)
    d_an, nearest, has_negative = mining.hardest_negative(distance, negative)

    # h: candidates are negatives of k (row k of `negative`) that are also negatives of i.
    valid_h = ops.logical_and(ops.take(negative, nearest, axis=0), negative)
    valid_h = ops.logical_and(valid_h, ops.expand_dims(has_negative, 1))
    d_kh, has_h = mining.masked_min(ops.take(distance, nearest, axis=0), valid_h, axis=1)

    zeros = ops.zeros_like(d_ap)
    term1 = ops.where(ops.logical_and(has_positive, has_negative), ops.relu(d_ap - d_an + margin1), zeros)
    term2 = ops.where(ops.logical_and(has_positive, has_h), ops.relu(d_ap - d_kh + margin2), zeros)
    return term1, term2


@keras.saving.register_keras_serializable(package="sal_tf")
class QuadrupletHardLoss(keras.losses.Loss):
    """Quadruplet-hard loss; `y_true` integer ids `[B]`, `y_pred` embeddings `[B, D]`.

    Ids pass through the Keras loss's float32 conversion, so they must be below 2**24.

    Args:
        margin1: float >= 0, default 0.5 (paper).
        margin2: float >= 0, default 0.2 (paper).

    Example:
        >>> loss = QuadrupletHardLoss()
        >>> labels, x = [0, 0, 1, 1, 2, 2], [[0.0], [1.0], [1.5], [3.0], [3.5], [6.0]]
        >>> round(float(loss(labels, x)), 4)  # term1 sums to 6.5, term2 to 1.4; / 6 anchors
        1.3167
    """

    def __init__(
        self,
        margin1=0.5,
        margin2=0.2,
        name="quadruplet_hard_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin1 = check_non_negative(margin1, "margin1")
        self.margin2 = check_non_negative(margin2, "margin2")

    def call(self, y_true, y_pred):
        term1, term2 = quadruplet_hard_terms(y_true, y_pred, self.margin1, self.margin2)
        return term1 + term2

    def get_config(self):
        config = super().get_config()
        config.update(margin1=self.margin1, margin2=self.margin2)
        return config

"""Batch-hard triplet loss (Hermans et al. 2017; paper eq. 4, Table 1 setting 3(T)).

Per anchor i: loss_i = [d(i, j*) - d(i, k*) + margin]+, with j* the farthest positive (same id,
j != i) and k* the nearest negative; d is the Euclidean (not squared) distance; the batch loss is
the mean over all B anchors, zeros included. This is torchreid's `TripletLoss` and fast-reid's
`triplet_loss(hard_mining=True, norm_feat=False)`, except that an anchor without a positive or
without a negative contributes 0 (fast-reid counts the anchor itself as a positive at d = 0).

`soft=True` is the soft-margin form of Hermans et al. and BoT (`nn.SoftMarginLoss`):
loss_i = log(1 + exp(d(i, j*) - d(i, k*))), no margin.
"""

import keras
from keras import ops

from sal_tf.losses import mining
from sal_tf.utils.checks import check_non_negative


def triplet_hard_terms(labels, embeddings, margin=0.5, soft=False):
    """Per-anchor batch-hard triplet hinge `[B]` (float32, or float64 for float64 input).

    Args:
        labels: integer ids `[B]`.
        embeddings: `[B, D]`.
        margin: the margin (paper's epsilon_1); unused when `soft`.
        soft: the soft margin, softplus(d_ap - d_an), instead of the hinge.
    """
    distance = mining.batch_distances(embeddings)
    positive, negative = mining.label_masks(labels)
    d_ap, has_positive = mining.hardest_positive(distance, positive)
    d_an, _, has_negative = mining.hardest_negative(distance, negative)
    hinge = ops.softplus(d_ap - d_an) if soft else ops.relu(d_ap - d_an + margin)
    return ops.where(ops.logical_and(has_positive, has_negative), hinge, ops.zeros_like(hinge))


@keras.saving.register_keras_serializable(package="sal_tf")
class TripletHardLoss(keras.losses.Loss):
    """Batch-hard triplet loss; `y_true` integer ids `[B]`, `y_pred` embeddings `[B, D]`.

    Ids pass through the Keras loss's float32 conversion, so they must be below 2**24.

    Args:
        margin: float >= 0, default 0.5.
        soft: the soft margin log(1 + exp(d_ap - d_an)) instead of the hinge (BoT's option).

    Example:
        >>> loss = TripletHardLoss(margin=0.5)
        >>> float(loss([0, 0, 1, 1], [[0.0], [1.0], [1.5], [3.0]]))  # (0 + 1 + 1.5 + 0) / 4
        0.625
    """

    def __init__(self, margin=0.5, soft=False, name="triplet_hard_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_non_negative(margin, "margin")
        self.soft = bool(soft)

    def call(self, y_true, y_pred):
        return triplet_hard_terms(y_true, y_pred, self.margin, self.soft)

    def get_config(self):
        config = super().get_config()
        config.update(margin=self.margin, soft=self.soft)
        return config

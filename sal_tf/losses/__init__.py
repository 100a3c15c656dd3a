"""Losses of the paper (§3.2–3.3): self-attention constraint, quadruplet/triplet-hard, eq. 6; and the
strong baseline's (BoT, Luo et al. 2019): label-smoothed cross-entropy and the center loss.

Keras `Loss` subclasses (registered under the `sal_tf` package) and the functional per-sample
forms they share with `SALObjective`. `keras.ops` only: runs on the TensorFlow and JAX backends.
"""

from sal_tf.losses.attention_constraint import (
    SelfAttentionConstraint,
    self_attention_constraint_terms,
)
from sal_tf.losses.center import CenterLoss, center_loss_terms
from sal_tf.losses.label_smoothing import LabelSmoothingCrossEntropy, label_smoothed_cross_entropy
from sal_tf.losses.mining import batch_distances, safe_sqrt
from sal_tf.losses.objective import SALObjective
from sal_tf.losses.quadruplet import QuadrupletHardLoss, quadruplet_hard_terms
from sal_tf.losses.triplet import TripletHardLoss, triplet_hard_terms

__all__ = [
    "CenterLoss",
    "LabelSmoothingCrossEntropy",
    "QuadrupletHardLoss",
    "SALObjective",
    "SelfAttentionConstraint",
    "TripletHardLoss",
    "batch_distances",
    "center_loss_terms",
    "label_smoothed_cross_entropy",
    "quadruplet_hard_terms",
    "safe_sqrt",
    "self_attention_constraint_terms",
    "triplet_hard_terms",
]

"""Pairwise distances and batch-hard mining shared by the metric losses.

Conventions (used by `triplet.py`, `quadruplet.py` and `objective.py`):

* `labels` are integer ids `[B]` (a `[B, 1]` column is accepted), `embeddings` are `[B, D]`.
* Distances are Euclidean (not squared), computed from the explicit differences
  `x_i - x_j` (memory `B * B * D`, e.g. 21 MB for the paper's 72 x 1024 batch), so identical
  embeddings give exactly 0 and no cancellation error. `safe_sqrt` has a zero gradient at 0,
  so duplicates never produce NaN gradients.
* Positives of anchor i: same id, j != i. Negatives: different id.
* Ties: the hardest positive / negative *distances* do not depend on which tied index wins;
  where an index is needed (the nearest negative k of the quadruplet loss) the lowest index wins,
  on every backend.
* Inputs in float16/bfloat16 are computed in float32; float64 stays float64 (for gradient checks).
"""

import keras
from keras import ops

# Stands in for "no candidate" in masked min/max; finite so that gradients never see inf * 0.
_FAR = 1e30


def compute_dtype(x):
    """float64 stays float64; every other float (float16, bfloat16, float32) computes in float32."""
    return "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"


def as_float(x):
    """Converts `x` to a tensor in its compute dtype (see `compute_dtype`)."""
    x = ops.convert_to_tensor(x)
    return ops.cast(x, compute_dtype(x))


def as_labels(labels, batch_rank_name="labels"):
    """Integer ids `[B]` (int32). Accepts `[B]` or `[B, 1]`, integer or float dtype."""
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.reshape(labels, (-1,))
    if len(labels.shape) != 1:
        raise ValueError(
            f"`{batch_rank_name}` must be integer ids of shape [B] (or [B, 1]). Received: shape={tuple(labels.shape)}"
        )
    return ops.cast(labels, "int32")


def check_embeddings(embeddings, name="embeddings"):
    """Float embeddings `[B, D]` in their compute dtype."""
    embeddings = as_float(embeddings)
    if len(embeddings.shape) != 2:
        raise ValueError(f"`{name}` must have shape [B, D]. Received: shape={tuple(embeddings.shape)}")
    return embeddings


def safe_sqrt(x):
    """sqrt(x) for x >= 0 with value 0 and gradient 0 where x == 0 (never NaN/inf)."""
    positive = x > 0
    root = ops.sqrt(ops.where(positive, x, ops.ones_like(x)))
    return ops.where(positive, root, ops.zeros_like(x))


def batch_distances(embeddings):
    """Euclidean distances `[B, B]` between the rows of `embeddings` `[B, D]`."""
    embeddings = check_embeddings(embeddings)
    diff = ops.expand_dims(embeddings, 1) - ops.expand_dims(embeddings, 0)
    return safe_sqrt(ops.sum(ops.square(diff), axis=-1))


def label_masks(labels):
    """Boolean `(positive, negative)` masks `[B, B]`: same id with j != i, and different id."""
    labels = as_labels(labels)
    index = ops.arange(ops.shape(labels)[0])
    same = ops.expand_dims(labels, 1) == ops.expand_dims(labels, 0)
    not_self = ops.expand_dims(index, 1) != ops.expand_dims(index, 0)
    return ops.logical_and(same, not_self), ops.logical_not(same)


def hardest_positive(distance, positive):
    """Farthest positive per anchor: `(d_ap [B], has_positive [B] bool)`; d_ap = 0 without one."""
    has_positive = ops.any(positive, axis=1)
    d_ap = ops.max(ops.where(positive, distance, ops.zeros_like(distance)), axis=1)
    return d_ap, has_positive


def hardest_negative(distance, negative):
    """Nearest negative per anchor: `(d_an [B], index [B] int32, has_negative [B] bool)`.

    Ties go to the lowest index. Without a negative, d_an = 0 and index = 0 (mask with
    `has_negative`).
    """
    has_negative = ops.any(negative, axis=1)
    masked = ops.where(negative, distance, ops.full_like(distance, _FAR))
    d_an = ops.min(masked, axis=1)
    size = ops.shape(distance)[0]
    index = ops.expand_dims(ops.arange(size, dtype="int32"), 0)
    is_nearest = ops.logical_and(negative, masked == ops.expand_dims(d_an, 1))
    nearest = ops.min(ops.where(is_nearest, index, ops.full_like(index, size)), axis=1)
    nearest = ops.where(has_negative, nearest, ops.zeros_like(nearest))
    d_an = ops.where(has_negative, d_an, ops.zeros_like(d_an))
    return d_an, nearest, has_negative


def masked_min(values, mask, axis=-1):
    """`(min over mask, any(mask))` along `axis`; the min is 0 where the mask is empty."""
    has_any = ops.any(mask, axis=axis)
    smallest = ops.min(ops.where(mask, values, ops.full_like(values, _FAR)), axis=axis)
    return ops.where(has_any, smallest, ops.zeros_like(smallest)), has_any

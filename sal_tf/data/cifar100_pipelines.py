"""CIFAR-100 `tf.data` pipelines (paper §4.5): seeded pad-4 crop + mirror training epochs, eval batches.

Training epochs are deterministic for `(seed, epoch)` like the re-ID pipeline (`sal_tf.data.pipelines`):
a numpy permutation seeded by `[seed, epoch]` and stateless draws seeded by `fold_in([seed, epoch], position)`.
"""

import numpy as np
import tensorflow as tf


def steps_per_epoch(num_images, batch_size):
    return num_images // batch_size


def augment(image, seed, pad=4, flip=True):
    """Zero-pad by `pad`, random crop back to the input size, random mirror; stateless by `seed` [2]."""
    shape = tf.shape(image)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if pad:
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        image = tf.image.stateless_random_crop(padded, shape, crop_seed)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image


def build_train_dataset(images, labels, batch_size=128, seed=0, epoch=0, pad=4, flip=True):
    """One training epoch of (float32 [B, 32, 32, 3] RGB 0..255, int32 [B]) batches.

    `images` / `labels` may be numpy arrays or (cached) tensors. Shuffled by a numpy permutation
    seeded by `[seed, epoch]`; the last partial batch is dropped (`steps_per_epoch` batches).
    """
    n = int(labels.shape[0])
    if batch_size < 1 or n < batch_size:
        raise ValueError(f"batch_size={batch_size} must be in 1..{n} (the number of training images).")
    if not 0 <= pad < 32:
        raise ValueError(f"pad must be in [0, 32); got {pad}.")
    order = np.random.default_rng([seed, epoch]).permutation(n)[: steps_per_epoch(n, batch_size) * batch_size]
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels, tf.int32)
    base_seed = tf.constant([seed, epoch], tf.int64)

    def load(position, index):
        element_seed = tf.random.experimental.stateless_fold_in(base_seed, position)
        image = augment(tf.gather(images, index), element_seed, pad=pad, flip=flip)
        return tf.cast(image, tf.float32), tf.gather(labels, index)

    ds = tf.data.Dataset.from_tensor_slices(order.astype(np.int64)).enumerate()
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def build_eval_dataset(images, labels, batch_size=256):
    """The images in order, no augmentation: (float32 [b, 32, 32, 3], int32 [b]); last batch kept."""
    ds = tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, np.int32)))
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)

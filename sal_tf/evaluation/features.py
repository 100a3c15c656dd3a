"""Embedding extraction over a `tf.data` pipeline."""

import weakref

import keras
import numpy as np
import tensorflow as tf


def _images_of(element):
    """The image batch of a dataset element: a tensor, (images, ...) or {"images": ...}."""
    if isinstance(element, dict):
        for key in ("images", "image"):
            if key in element:
                return element[key]
        raise ValueError(
            f"extract_features: a dict dataset element needs an 'images' key. Received keys: {sorted(element)}"
        )
    if isinstance(element, (tuple, list)):
        return element[0]
    return element


def _embedding_of(outputs):
    if isinstance(outputs, dict):
        if "embedding" not in outputs:
            raise ValueError(
                "extract_features: the model must return a dict with an 'embedding' entry "
                f"(or a tensor). Received keys: {sorted(outputs)}"
            )
        return outputs["embedding"]
    return outputs


_EMBED_FNS = weakref.WeakKeyDictionary()


def _embed_fn(model, flip, normalize):
    """One traced embedding function per (model, flip, normalize), reused across calls."""
    try:
        cache = _EMBED_FNS.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        cache = {}
    key = (bool(flip), bool(normalize))
    if key not in cache:

        @tf.function(reduce_retracing=True)
        def embed(images):
            emb = tf.cast(_embedding_of(model(images, training=False)), tf.float32)
            if flip:
                flipped = tf.reverse(images, axis=[2])  # [b, H, W, C]: W is axis 2
                emb = (emb + tf.cast(_embedding_of(model(flipped, training=False)), tf.float32)) / 2.0
            if normalize:
                emb = tf.math.l2_normalize(emb, axis=-1)
            return emb

        cache[key] = embed
    return cache[key]


def extract_features(model, dataset, flip=False, normalize=True, verbose=True):
    """Embeddings of every image of `dataset`, in order.

    Args:
        model: callable as `model(images, training=False)` returning a dict with
            "embedding" [b, D] (or the [b, D] tensor itself).
        dataset: `tf.data.Dataset` of float32 image batches [b, H, W, 3] (elements may
            also be `(images, ...)` tuples or dicts with an "images" entry).
        flip: average the embeddings of each image and of its horizontal flip.
        normalize: L2-normalise the (averaged) embeddings.
        verbose: show a `keras.utils.Progbar`.

    Returns:
        np.float32 [N, D].
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"extract_features: `dataset` must be a tf.data.Dataset. Received: {type(dataset).__name__}")

    embed = _embed_fn(model, flip, normalize)
    cardinality = int(dataset.cardinality())
    bar = keras.utils.Progbar(cardinality if cardinality > 0 else None, unit_name="batch") if verbose else None
    chunks = []
    for step, element in enumerate(dataset):
        images = _images_of(element)
        if images.shape.rank != 4:
            raise ValueError(
                "extract_features: expected image batches [b, H, W, 3]. "
                f"Received shape: {images.shape} (batch the dataset first)"
            )
        emb = embed(tf.cast(images, tf.float32))
        if emb.shape.rank != 2:
            raise ValueError(f"extract_features: the embedding must be [b, D]. Received shape: {emb.shape}")
        chunks.append(emb.numpy())
        if bar is not None:
            bar.update(step + 1)
    if not chunks:
        raise ValueError("extract_features: `dataset` yielded no batches.")
    return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)

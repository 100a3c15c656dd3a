"""Embedding extraction over a `tf.data` pipeline."""

import weakref

import numpy as np
import tensorflow as tf

from sal_tf.utils.progress import Progress


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


# model → {(flip, normalize): tf.function}. The functions reach the model only through a weak
# reference, so the entry (and its traced graphs) goes away with the model.
_EMBED_FNS = weakref.WeakKeyDictionary()


def _embed_fn(model, flip, normalize, image_shape):
    """One traced embedding function per (model, flip, normalize, image shape), reused across calls."""
    try:
        cache = _EMBED_FNS.setdefault(model, {})
        model_ref = weakref.ref(model)
    except TypeError:  # not weak-referenceable: no caching, a plain closure

        def model_ref():
            return model

        cache = {}
    key = (bool(flip), bool(normalize), tuple(image_shape))
    if key not in cache:
        cache[key] = _make_embed_fn(model_ref, flip, normalize, image_shape)
    return cache[key]


def _make_embed_fn(model_ref, flip, normalize, image_shape):
    """tf.function images [b, *image_shape] → float32 [b, D], calling `model_ref()` (a weak reference).

    Traced once for any batch size (the last, smaller batch and the other split reuse the graph).
    """

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32)])
    def embed(images):
        model = model_ref()
        emb = tf.cast(_embedding_of(model(images, training=False)), tf.float32)
        if flip:
            flipped = tf.reverse(images, axis=[2])  # [b, H, W, C]: W is axis 2
            emb = (emb + tf.cast(_embedding_of(model(flipped, training=False)), tf.float32)) / 2.0
        if normalize:
            emb = tf.math.l2_normalize(emb, axis=-1)
        return emb

    return embed


def extract_features(model, dataset, flip=False, normalize=True, verbose=True):
    """Embeddings of every image of `dataset`, in order.

    Args:
        model: callable as `model(images, training=False)` returning a dict with
            "embedding" [b, D] (or the [b, D] tensor itself).
        dataset: `tf.data.Dataset` of float32 image batches [b, H, W, 3] (elements may
            also be `(images, ...)` tuples or dicts with an "images" entry).
        flip: average the embeddings of each image and of its horizontal flip.
        normalize: L2-normalise the (averaged) embeddings.
        verbose: show progress (`sal_tf.utils.progress.Progress`: a bar on a terminal, one line in a log).

    Returns:
        np.float32 [N, D].

    The traced function is cached per (model, flip, normalize) and holds the model only weakly,
    so a model evaluated here is freed as soon as the caller drops it.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"extract_features: `dataset` must be a tf.data.Dataset. Received: {type(dataset).__name__}")

    cardinality = int(dataset.cardinality())
    bar = Progress(cardinality if cardinality > 0 else None, "Embedding", verbose=verbose, unit="batch")
    chunks = []
    for step, element in enumerate(dataset):
        images = _images_of(element)
        if images.shape.rank != 4:
            raise ValueError(
                "extract_features: expected image batches [b, H, W, 3]. "
                f"Received shape: {images.shape} (batch the dataset first)"
            )
        embed = _embed_fn(model, flip, normalize, images.shape[1:])
        emb = embed(tf.cast(images, tf.float32))
        if emb.shape.rank != 2:
            raise ValueError(f"extract_features: the embedding must be [b, D]. Received shape: {emb.shape}")
        chunks.append(emb.numpy())
        bar.update(step + 1)
    bar.finish()
    if not chunks:
        raise ValueError("extract_features: `dataset` yielded no batches.")
    return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)

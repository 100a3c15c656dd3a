"""Evaluate any model form on any re-ID dataset (cross-domain included): `sal-evaluate`.

The same code path as the trainer's end-of-stage evaluation: `sal_tf.evaluation.reid.evaluate_model`
on `sal_tf.data.pipelines.build_eval_dataset` batches of the dataset's query / gallery records, at
the model's input size. No training configuration is read or checked.
"""

import os

import numpy as np

from sal_tf.data import pipelines
from sal_tf.evaluation.reid import evaluate_model


def feature_model(backend):
    """What `extract_features` calls: the Keras model itself, the SavedModel's raw embedding function, or
    (ONNX / TFLite) the back end's numpy call inside the traced function (`tf.numpy_function`)."""
    if backend.kind == "keras":
        return backend.model
    if backend.kind == "saved_model":
        return lambda images, training=False: backend.raw_embeddings(images)
    import tensorflow as tf

    def embed(images, training=False):
        out = tf.numpy_function(backend.embed_array, [images], tf.float32, stateful=True)
        return tf.ensure_shape(out, [None, backend.embedding_dim])

    return embed


def select_queries(spec, query, default_count=4):
    """`--queries`: comma-separated indices and/or file names (basename or path) → query indices.

    Empty: `default_count` queries spread over the list. "none": no rank lists.
    """
    if spec in (None, ""):
        n = min(default_count, len(query))
        return list(np.linspace(0, len(query) - 1, n).astype(int)) if n else []
    if spec == "none":
        return []
    by_name = {}
    for i, r in enumerate(query):
        by_name.setdefault(r.path, i)
        by_name.setdefault(os.path.basename(r.path), i)
    chosen = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item.isdigit():
            if int(item) >= len(query):
                raise ValueError(f"--queries: index {item} is out of range (the query split has {len(query)} images).")
            chosen.append(int(item))
        elif item in by_name:
            chosen.append(by_name[item])
        else:
            raise ValueError(f"--queries: {item!r} is neither a query index nor a query file name.")
    return chosen


def evaluate_dataset(embedder, dataset, rerank=True, flip=False, batch_size=128, queries=(), rank_list_path=None,
                     verbose=True):  # fmt: skip
    """CMC / mAP / mINP of `embedder` (any `EmbeddingBackend`, `sal_tf.load_embedder`) on a `ReIDDataset`'s
    query / gallery splits.

    Returns `evaluate_model`'s (summary dict, rank-list picture or None).
    """
    if not dataset.query or not dataset.gallery:
        raise ValueError(f"{dataset.name} at {dataset.root} has an empty query or gallery split.")
    query_images, gallery_images = pipelines.build_query_gallery_datasets(dataset, embedder.image_size, batch_size)
    return evaluate_model(
        feature_model(embedder),
        query_images,
        gallery_images,
        dataset.query,
        dataset.gallery,
        rerank=rerank,
        flip=flip,
        verbose=verbose,
        rank_list_queries=list(queries),
        rank_list_path=rank_list_path,
    )

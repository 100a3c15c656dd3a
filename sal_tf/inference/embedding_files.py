"""Image files → one `.npz` of embeddings (the `embed` command's library side).

The `.npz` holds:

    embeddings  float32 [N, D]  L2-normalised (`Embedder` conventions)
    paths       str [N]         the embedded files, in order
    pids        int64 [N]       person ids   } only when every id is known (CSV, or every
    camids      int64 [N]       camera ids   } file name parses: `sources.parse_ids`)
    skipped     str [S]         files that could not be read or decoded (not embedded)
    model       str             the model file / folder; `flip` bool: flip-averaged

Files are read, decoded (`tf.io.decode_image`, first GIF frame) and resized bilinearly to the
model size by `sal_tf.data.pipelines.load_image`, as in evaluation, batched through `tf.data`;
a file that fails is dropped by `ignore_errors` and listed, never a crash. Only embedding
imports TensorFlow: commands that just read an `.npz` start without it.
"""

import dataclasses
import io
import os
import sys

import numpy as np

from sal_tf.utils import write_atomically
from sal_tf.utils.progress import Progress


@dataclasses.dataclass
class Embeddings:
    """Embeddings of some files with their paths (and ids when known); see the module docstring."""

    embeddings: np.ndarray
    paths: list
    pids: np.ndarray = None
    camids: np.ndarray = None
    skipped: list = dataclasses.field(default_factory=list)
    model: str = ""
    flip: bool = False


def image_dataset(paths, image_size, batch_size):
    """`tf.data` of (index int64 [b], float32 [b, H, W, 3]) batches; undecodable files are dropped."""
    import tensorflow as tf  # here, not at import: reading and writing .npz files needs no TensorFlow

    from sal_tf.data import pipelines

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), tf.constant(paths, tf.string)))
    ds = ds.map(
        lambda i, p: (i, pipelines.load_image(p, image_size)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)


def embed_paths(embedder, paths, batch_size=32, flip=False, progress=True):
    """Embeds image files with `embedder`.

    Returns:
        (np.float32 [n, D] embeddings, int64 [n] indices into `paths` that were embedded,
        list of the paths that were skipped).
    """
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1. Received: {batch_size}")
    paths = [os.fspath(p) for p in paths]
    bar = Progress(len(paths), "Embedding", verbose=progress, unit="image", stream=sys.stderr, log_every=10)
    chunks, kept = [], []
    for index, images in image_dataset(paths, embedder.image_size, batch_size):
        chunks.append(embedder.embed_batch(images, flip))
        kept.append(index.numpy())
        bar.update(int(kept[-1][-1]) + 1)
    bar.update(len(paths))
    bar.finish()
    kept = np.concatenate(kept) if kept else np.zeros([0], np.int64)
    missing = np.ones(len(paths), bool)
    missing[kept] = False
    emb = np.concatenate(chunks) if chunks else np.zeros((0, embedder.embedding_dim), np.float32)
    return emb.astype(np.float32, copy=False), kept, [p for p, m in zip(paths, missing) if m]


def embed_images(embedder, images, batch_size=32, flip=False, progress=True):
    """`Embeddings` of a `sources.ImageList` (ids kept for the files that were embedded)."""
    emb, kept, skipped = embed_paths(embedder, images.paths, batch_size, flip, progress)
    pick = None if images.pids is None else (lambda ids: np.asarray(ids, np.int64)[kept])
    return Embeddings(
        embeddings=emb,
        paths=[images.paths[i] for i in kept],
        pids=None if pick is None else pick(images.pids),
        camids=None if pick is None else pick(images.camids),
        skipped=skipped,
        model=str(embedder.source),
        flip=bool(flip),
    )


def save_npz(path, result, overwrite=False):
    """Writes `result` (`Embeddings`) as `.npz` atomically; refuses to replace a file unless `overwrite`."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"--output {path!r} exists; pass --overwrite to replace it.")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    arrays = {
        "embeddings": np.asarray(result.embeddings, np.float32),
        "paths": np.asarray(result.paths, dtype=str),
        "skipped": np.asarray(result.skipped, dtype=str),
        "model": np.asarray(result.model),
        "flip": np.asarray(result.flip),
    }
    if result.pids is not None:
        arrays["pids"], arrays["camids"] = np.asarray(result.pids, np.int64), np.asarray(result.camids, np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomically(path, buffer.getvalue())


def load_npz(path):
    """`Embeddings` of an `.npz` written by `save_npz` (or any with `embeddings` and `paths`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such embeddings file {path!r} (expected an .npz from the embed command).")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("embeddings", "paths") if k not in data]
        if missing:
            raise ValueError(f"{path!r} lacks {missing}; expected an .npz written by the embed command.")
        emb = np.asarray(data["embeddings"], np.float32)
        if emb.ndim != 2 or len(emb) != len(data["paths"]):
            raise ValueError(f"{path!r}: embeddings {emb.shape} do not match {len(data['paths'])} paths.")
        return Embeddings(
            embeddings=emb,
            paths=[str(p) for p in data["paths"]],
            pids=data["pids"] if "pids" in data else None,
            camids=data["camids"] if "camids" in data else None,
            skipped=[str(p) for p in data["skipped"]] if "skipped" in data else [],
            model=str(data["model"]) if "model" in data else "",
            flip=bool(data["flip"]) if "flip" in data else False,
        )

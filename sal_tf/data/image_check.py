"""Every image of a dataset decoded once when it is loaded, so no late failure costs a run.

`scan_images(paths)` decodes all files in parallel (`tf.data`, AUTOTUNE) with a progress line
and returns the paths that do not decode to a non-empty RGB image. `check_dataset` applies it to
the three splits of a `ReIDDataset`:

* train: undecodable files are dropped and counted (`skipped_files["undecodable_train"]`);
* query / gallery: undecodable files are an error naming them, before any training starts —
  or, with `drop_bad_eval_images=True`, dropped and counted (`undecodable_query` / `_gallery`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from sal_tf.utils.app import JPEG_NOISE, filtered_native_stderr
from sal_tf.utils.progress import Progress

_BATCH = 1024


def scan_images(paths, verbose=True, title="Checking images"):
    """The subset of `paths` (in order) that cannot be read and decoded as images."""
    paths = list(paths)
    ok = np.zeros(len(paths), bool)
    if not paths:
        return []

    def decode(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return index, tf.shape(image)

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), paths))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False).ignore_errors()
    progress = Progress(None, title, verbose=verbose and len(paths) >= 5000, unit="batch")
    with filtered_native_stderr(JPEG_NOISE):  # libjpeg complains about the files reported below
        for step, (index, shape) in enumerate(ds.batch(_BATCH).as_numpy_iterator()):
            ok[index[np.all(shape[:, :2] > 0, axis=1)]] = True
            progress.update(step + 1)
    progress.finish()
    return [p for p, good in zip(paths, ok) if not good]


def _listing(paths, limit=10):
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def check_dataset(dataset, drop_bad_eval_images=False, verbose=True):
    """`dataset` with undecodable images handled as the module docstring says.

    Raises:
        ValueError: a query / gallery image does not decode (without `drop_bad_eval_images`).
    """
    splits = {}
    skipped = dict(dataset.skipped_files)
    for split in ("train", "query", "gallery"):
        records = getattr(dataset, split)
        bad = set(scan_images([r.path for r in records], verbose=verbose, title=f"Checking {split} images"))
        if bad and split != "train" and not drop_bad_eval_images:
            raise ValueError(
                f"{dataset.name} at {dataset.root}: {len(bad)} {split} image(s) cannot be decoded (expected "
                f"JPEG/PNG/BMP/GIF): {_listing(sorted(bad))}. Replace or remove them, or pass "
                "--drop_bad_eval_images to leave them out of the evaluation (they are counted in the summary)."
            )
        if bad:
            skipped[f"undecodable_{split}"] = len(bad)
            if verbose:
                print(f"Skipping {len(bad)} undecodable {split} image(s): {_listing(sorted(bad))}")
        splits[split] = [r for r in records if r.path not in bad]
    return dataclasses.replace(dataset, skipped_files=skipped, **splits)

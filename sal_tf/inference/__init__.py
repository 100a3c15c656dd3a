"""Using a trained model: load any saved form, embed images.

* `load_embedder(path)` (also `sal_tf.load_embedder`): a training `--model_dir`, a `.keras` file or an
  exported SavedModel version folder → an `Embedder` (images → L2-normalised embeddings).
* `sal_tf.inference.embedding_files`: files (folder / glob / CSV) → embeddings `.npz`.
* a gallery to search: `sal_tf.gallery` (stores, and faiss index folders in `sal_tf.gallery.faiss_index`).

Names are resolved lazily, so importing this package does not import TensorFlow or faiss.
"""

_LAZY = {
    "Embedder": "sal_tf.inference.embedder",
    "find_model_file": "sal_tf.inference.loading",
    "load_embedder": "sal_tf.inference.loading",
    "load_model": "sal_tf.inference.loading",
    "resolve_model_path": "sal_tf.inference.loading",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sal_tf.inference' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

"""Using a trained model: load any saved form, embed images.

* `open_backend(path)` / `load_embedder(path)` (also `sal_tf.load_embedder`): a training `--model_dir`,
  a `.keras` file, an exported SavedModel folder, an `.onnx` or a `.tflite` file (or a folder holding
  several: the fastest) → its `EmbeddingBackend` (images → L2-normalised embeddings).
* `BoxEncoder` (`sal_tf.inference.boxes`): boxes of video frames → embeddings, a tracker's appearance model.
* `sal_tf.inference.embedding_files`: files (folder / glob / CSV) → embeddings `.npz`.
* a gallery to search: `sal_tf.gallery` (stores, and faiss index folders in `sal_tf.gallery.faiss_index`).

Names are resolved lazily, so importing this package does not import TensorFlow or faiss.
"""

from sal_tf.utils.lazy import lazy_module_attrs

_LAZY = {
    "BoxEncoder": "sal_tf.inference.boxes",
    "Embedder": "sal_tf.inference.embedder",
    "EmbeddingBackend": "sal_tf.inference.backend",
    "open_backend": "sal_tf.inference.forms",
    "find_model_file": "sal_tf.inference.loading",
    "load_embedder": "sal_tf.inference.loading",
    "load_model": "sal_tf.inference.loading",
    "resolve_model_path": "sal_tf.inference.loading",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__)

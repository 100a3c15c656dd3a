"""SAL-TF: Self-attention Learning for Person Re-identification (Jiang et al., BMVC 2018) in Keras 3.

    import sal_tf
    embedder = sal_tf.load_embedder("runs/market")   # a model_dir, a .keras file or a SavedModel folder
    embeddings = embedder(images)                    # RGB [B, H, W, 3] 0..255 → float32 [B, D], unit rows
    model = sal_tf.models.load_model("runs/market")  # the Keras SALModel itself

`import sal_tf` imports neither TensorFlow nor Keras: `load_embedder` is resolved on first use, so a
command line can quiet TensorFlow's start-up before anything imports it. `sal_tf.load_model` is the
old name of `load_embedder` (deprecated: it returns an embedder, not a Keras model).
"""

from sal_tf.utils.lazy import lazy_module_attrs
from sal_tf.utils.version import __version__

_LAZY = {"load_embedder": "sal_tf.inference.loading", "load_model": "sal_tf.inference.loading"}
__all__ = ["__version__", "load_embedder"]


__getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__)

"""SAL-TF: Self-attention Learning for Person Re-identification (Jiang et al., BMVC 2018) in Keras 3.

    import sal_tf
    embedder = sal_tf.load_model("runs/market")   # a model_dir, a .keras file or a SavedModel folder
    embeddings = embedder(images)                 # RGB [B, H, W, 3] 0..255 → float32 [B, D], unit rows

`import sal_tf` imports neither TensorFlow nor Keras: `load_model` is resolved on first use, so a
command line can quiet TensorFlow's start-up before anything imports it.
"""

__version__ = "0.1.0"
__all__ = ["__version__", "load_model"]


def __getattr__(name):
    if name == "load_model":
        from sal_tf.inference.loading import load_model

        return load_model
    raise AttributeError(f"module 'sal_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["load_model"])

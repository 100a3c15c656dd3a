"""SAL model: backbone, presets, preprocessing, weight loading; `build_model` and `load_model` (Keras models).

Names are resolved on first use, so `import sal_tf.models` imports neither TensorFlow nor Keras and
the TF-free modules (`presets`, `architecture`) serve configs and command lines before Keras starts.
Using any Keras name here (`SALModel`, `build_model`, `load_model`, ...) registers the `sal_tf` layers
with Keras; a bare `keras.saving.load_model` needs that first (`sal_tf/models/saving.py`).
"""

from sal_tf.utils.lazy import lazy_module_attrs

_LAZY = {
    "AttentionMap": "sal_tf.models.layers",
    "CaffePreprocessing": "sal_tf.models.preprocessing",
    "PRESETS": "sal_tf.models.presets",
    "SALModel": "sal_tf.models.sal_model",
    "StackAttention": "sal_tf.models.layers",
    "apply_bottleneck_block": "sal_tf.models.sal_model",
    "build_model": "sal_tf.models.factory",
    "caffe_preprocess": "sal_tf.models.preprocessing",
    "get_preset": "sal_tf.models.presets",
    "load_model": "sal_tf.models.saving",
    "load_backbone_weights": "sal_tf.models.weights",
    "total_stride": "sal_tf.models.sal_model",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__)

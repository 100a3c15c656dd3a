"""SAL model: backbone, presets, preprocessing, weight loading; `build_model` and `load_model` (Keras models)."""

from sal_tf.models.factory import build_model
from sal_tf.models.layers import AttentionMap, StackAttention
from sal_tf.models.preprocessing import CaffePreprocessing, caffe_preprocess
from sal_tf.models.presets import PRESETS, get_preset
from sal_tf.models.sal_model import SALModel, apply_bottleneck_block, total_stride
from sal_tf.models.saving import load_model
from sal_tf.models.weights import load_backbone_weights

__all__ = [
    "AttentionMap",
    "CaffePreprocessing",
    "PRESETS",
    "SALModel",
    "StackAttention",
    "apply_bottleneck_block",
    "build_model",
    "caffe_preprocess",
    "get_preset",
    "load_model",
    "load_backbone_weights",
    "total_stride",
]

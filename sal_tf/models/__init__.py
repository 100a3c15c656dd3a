"""SAL model: backbone, presets, preprocessing, weight loading."""

from sal_tf.models.layers import AttentionMap, StackAttention
from sal_tf.models.preprocessing import CaffePreprocessing, caffe_preprocess
from sal_tf.models.presets import PRESETS, get_preset
from sal_tf.models.sal_model import SALModel, apply_bottleneck_block, total_stride
from sal_tf.models.weights import load_backbone_weights


def build_model(preset="paper", num_classes=751, backbone_weights=None, verbose=True, **overrides):
    """Builds a `SALModel` from a preset name with optional argument overrides.

    Args:
        preset: "paper", "tiny" or "cifar".
        num_classes: number of training identities / classes.
        backbone_weights: "imagenet" (the Keras file for the model's `depth`), a path to a
            Keras ResNet50/101 `.h5` (loaded by layer name), or None.
        **overrides: any `SALModel` argument (dilation=False, multi_level=False, stage6=False,
            depth=101, ...).
    """
    config = get_preset(preset)
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"Unknown model options {sorted(unknown)}; expected some of {sorted(config)}.")
    config.update(overrides)
    model = SALModel(num_classes=num_classes, **config)
    load_backbone_weights(model, backbone_weights, verbose=verbose)
    return model


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
    "load_backbone_weights",
    "total_stride",
]

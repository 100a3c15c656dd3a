"""`build_model(preset, num_classes, ...)`: a `SALModel` from a preset name, with weights loaded."""

from sal_tf.models.presets import get_preset
from sal_tf.models.sal_model import SALModel
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

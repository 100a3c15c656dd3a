"""The backbone choices of the SAL network, without Keras: ResNet depths and the width-divisor rule.

`SALModel` (`sal_tf/models/sal_model.py`) builds from these; the training configs and command-line
flags (`sal_tf/training/config.py`, `sal_tf/cli/train_flags.py`) offer and check the same values
before Keras is imported (paper §3.1: ResNet50; Table 4: ResNet101).
"""

# Bottleneck blocks of conv2..conv5, as keras.applications.ResNet50 / ResNet101; 14 is one block per stage
# (timm's bottleneck ResNet-14): no ImageNet weights, for smoke tests and quick experiments (a third of the
# layers: its train step traces in half the time of ResNet50's on a 2-core CPU).
STAGE_BLOCKS = {14: (1, 1, 1, 1), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
DEPTHS = tuple(STAGE_BLOCKS)
IMAGENET_DEPTHS = (50, 101)  # the depths Keras publishes ImageNet weights for (`weights.IMAGENET_MD5`)
BASE_WIDTH = 64  # conv1's width; every other width is a multiple of it


def check_width_divisor(value, name="`width_divisor`"):
    """`value` divides every conv width (1 = ResNet, 8 = the `tiny` preset); raises ValueError naming `name`."""
    if value < 1 or BASE_WIDTH % value:
        raise ValueError(f"{name} must divide {BASE_WIDTH} (1, 2, 4, 8, ...). Received: {value!r}")
    return value

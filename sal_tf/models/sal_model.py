"""The SAL network: dilated ResNet50 + stage6, multi-level embedding, attention maps.

Paper §3.1–3.2, SPEC §3. Layer names follow `keras.applications.ResNet50`
(`conv1_conv`, `conv2_block1_1_conv`, …, `conv5_block3_out`) so the official
ImageNet weight file loads by name (see `sal_tf.models.weights`); the extra
stage is `conv6_block{1,2,3}_*`.
"""

import keras
from keras import layers

from sal_tf.models.layers import AttentionMap, StackAttention
from sal_tf.models.preprocessing import CaffePreprocessing

BN_EPSILON = 1.001e-5  # as keras.applications.ResNet50
STEMS = ("imagenet", "cifar")


def apply_bottleneck_block(x, filters, stride=1, dilation=1, conv_shortcut=True, name=None):
    """ResNet v1 bottleneck (Keras-applications layout: the stride sits on the first 1×1).

    Args:
        x: input tensor [B, H, W, C].
        filters: bottleneck width; the block outputs `4 * filters` channels.
        stride: stride of the first 1×1 conv and of the projection shortcut.
        dilation: dilation rate of the 3×3 conv (kernel shapes are unchanged,
            so ImageNet weights still fit).
        conv_shortcut: use a 1×1 projection shortcut (`{name}_0_conv`).
        name: block name prefix, e.g. `conv4_block1`.
    """
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def apply_stack(x, filters, blocks, stride=2, dilation=1, name=None):
    """A ResNet stage of `blocks` bottlenecks; the first has a projection shortcut."""
    x = apply_bottleneck_block(x, filters, stride=stride, dilation=dilation, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = apply_bottleneck_block(x, filters, dilation=dilation, conv_shortcut=False, name=f"{name}_block{i}")
    return x


@keras.saving.register_keras_serializable(package="sal_tf")
class SALModel(keras.Model):
    """Self-attention-learning re-ID network (ResNet50 backbone).

    Input: RGB images float [B, H, W, 3] in [0, 255] (normalisation is the
    model's first layer, `CaffePreprocessing`). Outputs a dict:
      * `embedding` [B, embedding_dim]: GAP of the multi-level feature → Dense.
      * `logits` [B, num_classes]: Dense classifier on the embedding (float32).
      * `attention` [B, 3, H'·W']: L2-normalised attention maps of stage 4, 5, 6
        (eq. 1), H'×W' = the stage6 map size (H/8 × W/8 with dilation).

    Args:
        num_classes: int ≥ 1, number of training identities.
        image_size: (H, W) input size; must be divisible by the total stride
            (8 with dilation, 32 without; 4 / 16 with the cifar stem).
        width_divisor: int, divides every conv width (1 = ResNet50, 8 = `tiny`).
        stem: "imagenet" (7×7/2 conv + 3×3/2 max-pool) or "cifar" (3×3/1 conv, no pool).
        dilation: bool, DIL (§3.1): stage4/5 keep stride 1 and dilate by 2/4.
            Off: standard strides; stage4 is average-pooled to the stage6 size
            for the multi-level feature and its attention map.
        multi_level: bool, embed concat(stage4, stage5, stage6); off: stage6 only.
        stage6_dilation: int, dilation of stage6's 3×3 convs.
        embedding_dim: int, size of the embedding.

    Examples:
    >>> model = SALModel(num_classes=10, **get_preset("tiny"))
    >>> out = model(np.zeros((2, 64, 32, 3), "float32"))
    >>> out["attention"].shape
    TensorShape([2, 3, 32])
    """

    def __init__(
        self,
        num_classes,
        image_size=(256, 128),
        width_divisor=1,
        stem="imagenet",
        dilation=True,
        multi_level=True,
        stage6_dilation=2,
        embedding_dim=1024,
        **kwargs,
    ):
        image_size = tuple(int(s) for s in image_size)
        _validate(num_classes, image_size, width_divisor, stem, stage6_dilation, embedding_dim, dilation)

        def w(c):
            return max(1, c // width_divisor)

        # === Functional Model ===
        images = layers.Input(shape=(*image_size, 3), name="images")
        x = CaffePreprocessing(name="preprocessing")(images)
        if stem == "imagenet":
            x = layers.ZeroPadding2D(padding=3, name="conv1_pad")(x)
            x = layers.Conv2D(w(64), 7, strides=2, name="conv1_conv")(x)
        else:
            x = layers.Conv2D(w(64), 3, strides=1, padding="same", name="conv1_conv")(x)
        x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
        if stem == "imagenet":
            x = layers.ZeroPadding2D(padding=1, name="pool1_pad")(x)
            x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

        x = apply_stack(x, w(64), 3, stride=1, name="conv2")
        x = apply_stack(x, w(128), 4, stride=2, name="conv3")
        s4_stride, s5_stride = (1, 1) if dilation else (2, 2)
        s4_dil, s5_dil = (2, 4) if dilation else (1, 1)
        stage4 = apply_stack(x, w(256), 6, stride=s4_stride, dilation=s4_dil, name="conv4")
        stage5 = apply_stack(stage4, w(512), 3, stride=s5_stride, dilation=s5_dil, name="conv5")
        stage6 = apply_stack(stage5, w(256), 3, stride=1, dilation=stage6_dilation, name="conv6")
        if not dilation:
            # stage4 is 2× the stage5/6 resolution: pool it to their grid.
            stage4 = layers.AveragePooling2D(2, name="conv4_pool")(stage4)

        if multi_level:
            feature = layers.Concatenate(axis=-1, name="multi_level")([stage4, stage5, stage6])
        else:
            feature = stage6
        pooled = layers.GlobalAveragePooling2D(name="gap")(feature)
        embedding = layers.Dense(embedding_dim, name="embedding")(pooled)
        embedding = layers.Activation("linear", dtype="float32", name="embedding_float32")(embedding)
        logits = layers.Dense(num_classes, dtype="float32", name="classifier")(embedding)
        attention = StackAttention(name="attention")(
            [
                AttentionMap(name="attention_stage4")(stage4),
                AttentionMap(name="attention_stage5")(stage5),
                AttentionMap(name="attention_stage6")(stage6),
            ]
        )
        outputs = {"embedding": embedding, "logits": logits, "attention": attention}
        super().__init__(inputs=images, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = int(num_classes)
        self.image_size = image_size
        self.width_divisor = int(width_divisor)
        self.stem = stem
        self.dilation = bool(dilation)
        self.multi_level = bool(multi_level)
        self.stage6_dilation = int(stage6_dilation)
        self.embedding_dim = int(embedding_dim)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "image_size": list(self.image_size),
            "width_divisor": self.width_divisor,
            "stem": self.stem,
            "dilation": self.dilation,
            "multi_level": self.multi_level,
            "stage6_dilation": self.stage6_dilation,
            "embedding_dim": self.embedding_dim,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def embedding_model(self):
        """A functional model images → `embedding` that shares this model's weights."""
        return keras.Model(self.input, self.get_layer("embedding_float32").output, name=f"{self.name}_embedding")


def total_stride(stem, dilation):
    """Output stride of the stage6 map for a stem / dilation setting."""
    base = 4 if stem == "imagenet" else 1
    return base * (2 if dilation else 8)


def _validate(num_classes, image_size, width_divisor, stem, stage6_dilation, embedding_dim, dilation):
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be an int ≥ 1. Received: num_classes={num_classes!r}")
    if stem not in STEMS:
        raise ValueError(f"`stem` must be one of {STEMS}. Received: stem={stem!r}")
    if len(image_size) != 2 or min(image_size) < 1:
        raise ValueError(f"`image_size` must be (height, width). Received: image_size={image_size!r}")
    if width_divisor < 1 or 64 % width_divisor:
        raise ValueError(f"`width_divisor` must divide 64 (1, 2, 4, 8, ...). Received: width_divisor={width_divisor!r}")
    if stage6_dilation < 1 or embedding_dim < 1:
        raise ValueError(
            "`stage6_dilation` and `embedding_dim` must be ≥ 1. "
            f"Received: stage6_dilation={stage6_dilation!r}, embedding_dim={embedding_dim!r}"
        )
    stride = total_stride(stem, dilation)
    need = stride
    if image_size[0] % need or image_size[1] % need:
        raise ValueError(
            f"`image_size` {image_size} must be divisible by {need}, the output stride of the "
            f"{stem} stem with dilation={'on' if dilation else 'off'}, so the stage maps align. "
            f"Received: image_size={image_size!r}"
        )

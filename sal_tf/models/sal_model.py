"""The SAL network: (dilated) ResNet50/101 + optional stage6, multi-level embedding, attention maps.

Paper §3.1–3.2. Layer names follow `keras.applications.ResNet50` / `ResNet101`
(`conv1_conv`, `conv2_block1_1_conv`, …, `conv4_block6_out` or `conv4_block23_out`,
`conv5_block3_out`) so the official ImageNet weight files load by name (see
`sal_tf.models.weights`); the extra stage is `conv6_block{1,2,3}_*`.
"""

import keras
from keras import layers

from sal_tf.models.architecture import DEPTHS, STAGE_BLOCKS, check_width_divisor
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


def apply_stem(x, width, stem):
    """conv1 (+ pool1): "imagenet" = 7×7/2 conv + 3×3/2 max-pool; "cifar" = 3×3/1 conv, no pool."""
    if stem == "imagenet":
        x = layers.ZeroPadding2D(padding=3, name="conv1_pad")(x)
        x = layers.Conv2D(width, 7, strides=2, name="conv1_conv")(x)
    else:
        x = layers.Conv2D(width, 3, strides=1, padding="same", name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    if stem == "imagenet":
        x = layers.ZeroPadding2D(padding=1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    return x


def apply_stages(x, w, depth, dilation, stage6, stage6_dilation, last_stride=2):
    """conv2..conv5 (+ conv6) on the stem output; returns {"stage4": t, "stage5": t[, "stage6": t]}.

    DIL (§3.1): stage4/5 keep stride 1 and dilate their 3×3 convs by 2/4.
    Without DIL, `last_stride=1` keeps conv5 at stage4's resolution (BoT's "last stride 1").
    Stage6 (3 bottlenecks, 1024 channels, stride 1) follows stage5.
    """
    b2, b3, b4, b5 = STAGE_BLOCKS[depth]
    x = apply_stack(x, w(64), b2, stride=1, name="conv2")
    x = apply_stack(x, w(128), b3, stride=2, name="conv3")
    stride, (dil4, dil5) = (1, (2, 4)) if dilation else (2, (1, 1))
    stride5 = 1 if dilation else last_stride
    stages = {"stage4": apply_stack(x, w(256), b4, stride=stride, dilation=dil4, name="conv4")}
    stages["stage5"] = apply_stack(stages["stage4"], w(512), b5, stride=stride5, dilation=dil5, name="conv5")
    if stage6:
        stages["stage6"] = apply_stack(stages["stage5"], w(256), 3, stride=1, dilation=stage6_dilation, name="conv6")
    if stride5 == 2:
        # stage4 is 2× the resolution of the last stage: pool it to that grid.
        stages["stage4"] = layers.AveragePooling2D(2, name="conv4_pool")(stages["stage4"])
    return stages


def apply_head(pooled, embedding_dim, num_classes, bnneck):
    """Dense embedding → (BNNeck) → classifier; returns the model's embedding outputs and logits.

    BNNeck (BoT, Luo et al. 2019): a BatchNorm without shift (β fixed at 0, `center=False`) after
    the embedding; the metric losses take the feature before it (`pre_bn_embedding`), the
    classifier (no bias) and retrieval the one after it (`embedding`).
    """
    embedding = layers.Dense(embedding_dim, name="embedding")(pooled)
    outputs = {}
    if bnneck:
        outputs["pre_bn_embedding"] = layers.Activation("linear", dtype="float32", name="pre_bn_embedding")(embedding)
        embedding = layers.BatchNormalization(center=False, epsilon=BN_EPSILON, name="bnneck")(embedding)
    outputs["embedding"] = layers.Activation("linear", dtype="float32", name="embedding_float32")(embedding)
    classifier = layers.Dense(num_classes, use_bias=not bnneck, dtype="float32", name="classifier")
    outputs["logits"] = classifier(outputs["embedding"])
    return outputs


@keras.saving.register_keras_serializable(package="sal_tf")
class SALModel(keras.Model):
    """Self-attention-learning re-ID network (ResNet50 or ResNet101 backbone).

    Input: RGB images float [B, H, W, 3] in [0, 255] (normalisation is the
    model's first layer, `CaffePreprocessing`). Outputs a dict:
      * `embedding` [B, embedding_dim]: GAP of the multi-level feature → Dense (every setting).
      * `logits` [B, num_classes]: Dense classifier on the embedding (float32).
      * `attention` [B, S, h·w]: L2-normalised attention maps (eq. 1), one row per
        stage of `attention_stages`: (stage4, stage5, stage6) with stage6, S = 3;
        (stage4, stage5) without, S = 2. h×w = `attention_map_size`, the grid of the
        last stage (H/8 × W/8 with dilation, H/32 × W/32 without; stage4 is
        average-pooled to it when dilation is off). Positions are row-major.

    Args:
        num_classes: int ≥ 1, number of training identities.
        image_size: (H, W) input size; must be divisible by the total stride
            (8 with dilation, 32 without; 2 / 8 with the cifar stem).
        width_divisor: int, divides every conv width (1 = ResNet, 8 = `tiny`).
        stem: "imagenet" (7×7/2 conv + 3×3/2 max-pool) or "cifar" (3×3/1 conv, no pool).
        dilation: bool, DIL (§3.1): stage4/5 keep stride 1 and dilate by 2/4.
            Off: standard strides; stage4 is average-pooled to the last stage's
            size for the multi-level feature and its attention map.
        multi_level: bool, embed concat(stage4, stage5[, stage6]); off: the last stage only.
        stage6_dilation: int, dilation of stage6's 3×3 convs (unused without stage6).
        embedding_dim: int, size of the embedding.
        depth: 50 or 101, the ResNet backbone (conv4 has 6 or 23 blocks).
        stage6: bool, the extra stage of §3.1 that undoes dilation's gridding; off =
            the plain ResNet (+ the FC embedding), the Table 1 / Table 4 baselines.
        bnneck: bool, BoT's BNNeck (see `apply_head`): `embedding` is then the
            BatchNorm'd feature (what retrieval, exports and `load_embedder` use) and
            the extra output `pre_bn_embedding` [B, embedding_dim] feeds the metric losses.
        last_stride: 1 or 2, the stride of conv5 without dilation (BoT: 1, output
            stride 16); with dilation conv5 keeps stride 1 anyway.

    Examples:
    >>> model = SALModel(num_classes=10, **get_preset("tiny"))
    >>> out = model(np.zeros((2, 64, 32, 3), "float32"))
    >>> out["attention"].shape, model.attention_stages, model.attention_map_size
    (TensorShape([2, 3, 32]), ('stage4', 'stage5', 'stage6'), (8, 4))
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
        depth=50,
        stage6=True,
        bnneck=False,
        last_stride=2,
        **kwargs,
    ):
        image_size = tuple(int(s) for s in image_size)
        _validate(num_classes, image_size, width_divisor, stem, stage6_dilation, embedding_dim, dilation, depth)
        _validate_last_stride(last_stride)

        def w(c):
            return max(1, c // width_divisor)

        # === Functional Model ===
        images = layers.Input(shape=(*image_size, 3), name="images")
        x = apply_stem(CaffePreprocessing(name="preprocessing")(images), w(64), stem)
        stages = apply_stages(x, w, int(depth), dilation, bool(stage6), stage6_dilation, int(last_stride))
        last = list(stages.values())[-1]
        if multi_level:
            feature = layers.Concatenate(axis=-1, name="multi_level")(list(stages.values()))
        else:
            feature = last
        pooled = layers.GlobalAveragePooling2D(name="gap")(feature)
        outputs = apply_head(pooled, embedding_dim, num_classes, bool(bnneck))
        maps = [AttentionMap(name=f"attention_{s}")(t) for s, t in stages.items()]
        outputs["attention"] = StackAttention(name="attention")(maps)
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
        self.depth = int(depth)
        self.stage6 = bool(stage6)
        self.bnneck = bool(bnneck)
        self.last_stride = int(last_stride)
        self._attention_stages = tuple(stages)
        self._attention_map_size = tuple(int(d) for d in last.shape[1:3])

    @property
    def attention_stages(self):
        """Names of the rows of the `attention` output, in order: ("stage4", "stage5"[, "stage6"])."""
        return tuple(self._attention_stages)

    @property
    def attention_map_size(self):
        """(h, w) grid of each attention row: `attention[b, s]` reshapes row-major to [h, w]."""
        return tuple(self._attention_map_size)

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
            "depth": self.depth,
            "stage6": self.stage6,
            "bnneck": self.bnneck,
            "last_stride": self.last_stride,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def embedding_model(self):
        """A functional model images → `embedding` that shares this model's weights."""
        return keras.Model(self.input, self.get_layer("embedding_float32").output, name=f"{self.name}_embedding")


def total_stride(stem, dilation, last_stride=2):
    """Output stride of the last stage (stage5, and stage6 which keeps its size) for a stem / dilation setting."""
    base = 4 if stem == "imagenet" else 1
    return base * (2 if dilation else 4 * last_stride)


def _validate_last_stride(last_stride):
    if last_stride not in (1, 2) or isinstance(last_stride, bool):
        raise ValueError(f"`last_stride` must be 1 or 2 (BoT: 1). Received: last_stride={last_stride!r}")


def _validate(num_classes, image_size, width_divisor, stem, stage6_dilation, embedding_dim, dilation, depth):
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be an int ≥ 1. Received: num_classes={num_classes!r}")
    if stem not in STEMS:
        raise ValueError(f"`stem` must be one of {STEMS}. Received: stem={stem!r}")
    if depth not in DEPTHS or isinstance(depth, bool):
        raise ValueError(f"`depth` must be one of {DEPTHS} (ResNet14 / 50 / 101). Received: depth={depth!r}")
    if len(image_size) != 2 or min(image_size) < 1:
        raise ValueError(f"`image_size` must be (height, width). Received: image_size={image_size!r}")
    check_width_divisor(width_divisor)
    if stage6_dilation < 1 or embedding_dim < 1:
        raise ValueError(
            "`stage6_dilation` and `embedding_dim` must be ≥ 1. "
            f"Received: stage6_dilation={stage6_dilation!r}, embedding_dim={embedding_dim!r}"
        )
    need = total_stride(stem, dilation)
    if image_size[0] % need or image_size[1] % need:
        raise ValueError(
            f"`image_size` {image_size} must be divisible by {need}, the output stride of the "
            f"{stem} stem with dilation={'on' if dilation else 'off'}, so the stage maps align. "
            f"Received: image_size={image_size!r}"
        )

"""The function the TFLite files are converted from: raw RGB pixels in, the caffe flip folded into conv1.

`CaffePreprocessing` (`sal_tf/models/preprocessing.py`) flips RGB → BGR and subtracts the ImageNet BGR
means before conv1 (paper §3.1: the ResNet50 stem). A channel flip feeding a convolution is the same
convolution with its kernel's input channels flipped, so for a `SALModel` `serving_function` computes

    embedding = L2(rest(conv1'(pad(pixels - mean_RGB))))

with conv1' = conv1 whose kernel is flipped along its input channels and `rest` the model after conv1
(its own layers and weights): in float the embedding of `EmbeddingServingModule.serve_float`
(`sal_tf/export/saved_model.py`) to rounding, and converted to full-integer int8 by
`sal_tf/export/tflite.py` no float op runs between the uint8 input and the first int8 convolution
(the mean subtraction is an int8 SUB; no REVERSE_V2 is left).

The batch dimension is fixed at 1 (the files are resized at run time, `resize_tensor_input`): with
a dynamic batch the converter leaves every dilated 3×3 conv of stages 4–6 (§3.1 DIL) as
SPACE_TO_BATCH_ND → CONV_2D → BATCH_TO_SPACE_ND with its BatchNorm as a separate MUL + ADD; with a
static one they become dilated CONV_2Ds with the BatchNorm folded in.
"""

import numpy as np
import tensorflow as tf

from sal_tf.export import signatures as sig
from sal_tf.models.preprocessing import IMAGENET_BGR_MEAN

PREPROCESSING_LAYER = "preprocessing"  # `SALModel`'s layer names (sal_tf/models/sal_model.py)
STEM_PAD_LAYER = "conv1_pad"
STEM_CONV_LAYER = "conv1_conv"
CONVERSION_BATCH = 1


def foldable(embedding_model):
    """Whether `embedding_model` starts as a `SALModel` does: `CaffePreprocessing` → (conv1_pad) → conv1_conv."""
    names = [layer.name for layer in embedding_model.layers]
    return PREPROCESSING_LAYER in names and STEM_CONV_LAYER in names


def serving_function(embedding_model, image_size):
    """tf.function float32 RGB pixels [1, H, W, 3] in 0..255 → {"embedding": L2-normalised [1, D]}.

    The caffe preprocessing is folded into conv1 when the model is `foldable`; any other images →
    embedding model is called as it is.
    """
    height, width = (int(s) for s in image_size)
    embed = _folded(embedding_model) if foldable(embedding_model) else embedding_model

    @tf.function(
        autograph=False,
        input_signature=[tf.TensorSpec([CONVERSION_BATCH, height, width, 3], tf.float32, name=sig.INPUT_IMAGES)],
    )
    def serve_pixels(images):
        embedding = tf.cast(embed(images, training=False), tf.float32)
        return {sig.OUTPUT: tf.math.l2_normalize(embedding, axis=-1)}

    return serve_pixels


def _folded(embedding_model):
    """pixels → embedding without the flip: mean subtraction, (pad), conv1 with flipped kernel, the rest."""
    import keras

    conv = embedding_model.get_layer(STEM_CONV_LAYER)
    names = [layer.name for layer in embedding_model.layers]
    pad = embedding_model.get_layer(STEM_PAD_LAYER) if STEM_PAD_LAYER in names else None
    rest = keras.Model(conv.output, embedding_model.output)
    kernel, *bias = (np.asarray(w) for w in conv.get_weights())
    kernel = tf.constant(kernel[:, :, ::-1, :])  # input channels BGR → RGB
    mean_rgb = tf.constant(IMAGENET_BGR_MEAN[::-1], tf.float32)
    config = conv.get_config()
    strides, dilations, padding = config["strides"], config["dilation_rate"], config["padding"].upper()

    def embed(images, training=False):
        x = images - mean_rgb
        x = pad(x) if pad is not None else x
        x = tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations)
        x = tf.nn.bias_add(x, bias[0]) if bias else x
        return rest(x, training=training)

    return embed

"""Input preprocessing as the Keras ResNet50 ImageNet weights expect ("caffe" mode).

This is the single place where pixel normalisation happens: the SAL model's first
layer is `CaffePreprocessing`, so training pipelines, evaluation, and the serving
signatures all feed plain RGB pixels in [0, 255] (float) and get identical
normalisation. Convention: RGB → BGR, subtract the ImageNet BGR channel means,
no scaling (same as `keras.applications.resnet50.preprocess_input`).
"""

import keras
from keras import ops

# ImageNet means in BGR order, as in keras.applications.imagenet_utils ("caffe").
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def caffe_preprocess(images):
    """RGB float [..., 3] in [0, 255] → BGR minus ImageNet means (float32)."""
    images = ops.cast(images, "float32")
    bgr = ops.flip(images, axis=-1)
    return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype="float32")


@keras.saving.register_keras_serializable(package="sal_tf")
class CaffePreprocessing(keras.layers.Layer):
    """Layer form of `caffe_preprocess`: [B, H, W, 3] RGB 0..255 → caffe input."""

    def call(self, inputs):
        out = caffe_preprocess(inputs)
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

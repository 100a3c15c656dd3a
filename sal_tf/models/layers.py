"""Small layers of the SAL model, in `keras.ops` only."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sal_tf")
class AttentionMap(keras.layers.Layer):
    """Self-attention map of one stage (paper eq. 1).

    `a_i = mean_c v_ic²` over the channels of the stage output `v` [B, H, W, C],
    flattened over the H·W positions (row-major) and L2-normalised.
    Output: float32 [B, H·W]. Computed in float32 under mixed precision.
    """

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        a = ops.mean(ops.square(x), axis=-1)
        a = ops.reshape(a, (ops.shape(a)[0], -1))
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(a), axis=-1, keepdims=True), self.epsilon))
        return a / norm

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        hw = None if h is None or w is None else h * w
        return (b, hw)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="sal_tf")
class StackAttention(keras.layers.Layer):
    """Stacks per-stage attention maps [B, HW] × S into [B, S, HW] (float32)."""

    def call(self, inputs):
        return ops.stack([ops.cast(x, "float32") for x in inputs], axis=1)

    def compute_output_spec(self, inputs):
        b, hw = inputs[0].shape
        return keras.KerasTensor((b, len(inputs), hw), dtype="float32")

"""The serving SavedModel of an embedding model: one `serve`, two input signatures.

As TF Model Garden's `export_base.py`: encoded images are decoded with
`tf.map_fn` on the CPU, resized, and go through the same `serve` as uint8
image tensors. The module tracks the model's `tf.Variable`s directly (not the
Keras objects), so the SavedModel holds each weight once and loads with
`tf.saved_model.load` alone — no Keras, no `sal_tf` (what TF Serving does).
"""

import os

import numpy as np
import tensorflow as tf

from sal_tf.export import signatures as sig


class EmbeddingServingModule(tf.Module):
    """tf.Module with the serving functions of an images → embedding model.

    Args:
        embedding_model: Keras model, float32 RGB [B, H, W, 3] in [0, 255] →
            embedding [B, D] (e.g. `SALModel.embedding_model()`).
        image_size: (H, W) the model expects.

    Attributes:
        serve_bytes: tf.function, string [B] → {"embedding": float32 [B, D]}.
        serve_images: tf.function, uint8 [B, h, w, 3] → {"embedding": ...}.
        serve_float: tf.function, float32 [B, H, W, 3] at the model size →
            {"embedding": ...} (not a signature; used for ONNX and the NCHW files).
        keras_model: a function returning the Keras model (not tracked: the SavedModel holds
            `model_variables` only); `sal_tf/export/pixels.py` builds the TFLite files' function from it.
    All outputs are L2-normalised; an empty batch gives float32 [0, D].
    """

    def __init__(self, embedding_model, image_size):
        super().__init__(name="sal_embedding_serving")
        height, width = (int(s) for s in image_size)
        dim = int(embedding_model.output_shape[-1])
        # Track the tf.Variables themselves: tracking the Keras model as well would
        # add a second object path (and, for wrapped variables, a second copy).
        self.model_variables = [_tf_variable(w) for w in embedding_model.weights]
        model = embedding_model  # captured by the closures below, not tracked
        # A function giving the Keras model (for `sal_tf.export.tflite`), not the model: it stays untracked.
        self.keras_model = lambda: model

        def serve(images):
            def run():
                embedding = tf.cast(model(images, training=False), tf.float32)
                return tf.math.l2_normalize(embedding, axis=-1)

            def empty():
                return tf.zeros([0, dim], tf.float32)

            embedding = tf.cond(tf.shape(images)[0] > 0, run, empty)
            return {sig.OUTPUT: tf.ensure_shape(embedding, [None, dim])}

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name=sig.INPUT_BYTES)])
        def serve_bytes(image_bytes):
            image_bytes = sig.validate_image_bytes(image_bytes)
            return serve(sig.decode_and_resize(image_bytes, (height, width)))

        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=sig.INPUT_IMAGES)]
        )
        def serve_images(images):
            images = sig.validate_image_batch(images)
            return serve(sig.resize(images, (height, width)))

        @tf.function(
            autograph=False,
            input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32, name=sig.INPUT_IMAGES)],
        )
        def serve_float(images):
            embedding = tf.cast(model(images, training=False), tf.float32)
            return {sig.OUTPUT: tf.math.l2_normalize(embedding, axis=-1)}

        self.serve_bytes = serve_bytes
        self.serve_images = serve_images
        self.serve_float = serve_float
        self.image_size = (height, width)
        self.embedding_dim = dim

    def signatures(self):
        """The `signatures=` argument of `tf.saved_model.save`."""
        return {
            sig.SIGNATURE_BYTES: self.serve_bytes.get_concrete_function(),
            sig.SIGNATURE_IMAGES: self.serve_images.get_concrete_function(),
        }


def _tf_variable(weight):
    value = getattr(weight, "value", weight)
    if not isinstance(value, tf.Variable):
        raise TypeError(
            f"Weight {getattr(weight, 'path', weight)!r} is backed by {type(value).__name__}, expected a "
            "tf.Variable: export needs the Keras TensorFlow backend (KERAS_BACKEND=tensorflow)."
        )
    return value


def save(module, directory):
    """Writes `module` (an `EmbeddingServingModule`) as a SavedModel into `directory`."""
    tf.saved_model.save(module, directory, signatures=module.signatures())


def parameter_bytes(model):
    """Bytes of all of `model`'s weights (trainable and not) at their stored dtype."""
    return int(sum(np.prod(w.shape, dtype=np.int64) * np.dtype(w.dtype).itemsize for w in model.weights))


def variables_bytes(saved_model_dir):
    """Bytes of the SavedModel's checkpoint shards (`variables/variables.data-*`)."""
    vdir = os.path.join(saved_model_dir, "variables")
    if not os.path.isdir(vdir):
        raise FileNotFoundError(f"{saved_model_dir}: no variables/ folder; not a SavedModel with weights.")
    return sum(os.path.getsize(os.path.join(vdir, n)) for n in os.listdir(vdir) if n.startswith("variables.data-"))

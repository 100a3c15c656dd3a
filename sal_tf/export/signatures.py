"""Names, specs and TensorFlow-only input ops of the serving signatures.

This module imports TensorFlow only (no Keras, no `sal_tf`), so the verifier can
use it in a process that sees exactly what TF Serving sees.

Signatures of an exported embedding model (TF Serving `signature_name`):
  * `serving_default`: `image_bytes` string [B] (encoded JPEG/PNG/GIF/BMP/WebP,
    any size) → `embedding` float32 [B, D], L2-normalised.
  * `serving_images`: `images` uint8 [B, H, W, 3] RGB, any H×W → `embedding`.
Both resize to the model size with bilinear `tf.image.resize` (no aspect-ratio
padding, as in training) and feed float32 RGB in [0, 255]: the model's own first
layer does the normalisation.
"""

import tensorflow as tf

SIGNATURE_BYTES = "serving_default"
SIGNATURE_IMAGES = "serving_images"
INPUT_BYTES = "image_bytes"
INPUT_IMAGES = "images"
OUTPUT = "embedding"

# Leading bytes of the formats `tf.io.decode_image` reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"RIFF")


def validate_image_bytes(image_bytes, signature=SIGNATURE_BYTES):
    """Returns `image_bytes` after in-graph checks: 1-D, each element a known image format.

    Failures raise `InvalidArgumentError` (HTTP 400 / gRPC INVALID_ARGUMENT in TF
    Serving) whose message names the input and what was expected. The shape is
    checked by `EnsureShape` at run time: TF Serving feeds tensors as they come,
    and the graph optimiser folds rank checks to the declared signature shape.
    """
    image_bytes = tf.ensure_shape(image_bytes, [None])
    known = tf.zeros_like(image_bytes, dtype=tf.bool)
    for magic in _MAGIC:
        known = tf.logical_or(known, tf.equal(tf.strings.substr(image_bytes, 0, len(magic)), magic))
    bad = tf.reshape(tf.where(tf.logical_not(known)), [-1])
    format_ok = tf.debugging.Assert(
        tf.equal(tf.size(bad), 0),
        [
            f"{signature}: `{INPUT_BYTES}` holds bytes that are not an encoded JPEG/PNG/GIF/BMP/WebP "
            "image (empty, truncated, or base64 text not decoded); bad indices:",
            bad,
        ],
        summarize=8,
    )
    with tf.control_dependencies([format_ok]):
        return tf.identity(image_bytes)


def validate_image_batch(images, signature=SIGNATURE_IMAGES):
    """Returns `images` after in-graph checks: [B, H, W, 3] with H, W >= 1."""
    images = tf.ensure_shape(images, [None, None, None, 3])
    shape = tf.shape(images)
    size_ok = tf.debugging.Assert(
        tf.greater(tf.reduce_min(shape[1:3]), 0),
        [f"{signature}: `{INPUT_IMAGES}` must be uint8 [batch, height >= 1, width >= 1, 3]; got shape", shape],
        summarize=4,
    )
    with tf.control_dependencies([size_ok]):
        return tf.identity(images)


def decode_image(contents):
    """Encoded bytes (scalar string) → uint8 [h, w, 3] RGB (first frame of a GIF)."""
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def resize(images, image_size):
    """uint8/float [..., h, w, 3] → float32 [..., H, W, 3] in [0, 255], bilinear."""
    return tf.image.resize(images, image_size, method="bilinear")


def decode_and_resize(image_bytes, image_size):
    """Batch of encoded images string [B] → float32 [B, H, W, 3], decoded on the CPU."""
    height, width = image_size

    def one(contents):
        return resize(decode_image(contents), image_size)

    with tf.device("/cpu:0"):
        return tf.map_fn(
            one,
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
            parallel_iterations=16,
        )

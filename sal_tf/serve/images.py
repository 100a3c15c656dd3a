"""Uploaded images: base64 text → bytes, their content type, and decoding as the serving signature does.

Decoding is `sal_tf.export.signatures.decode_and_resize` (`tf.io.decode_image`, RGB, bilinear
resize to the model size), the function the exported SavedModel's `serving_default` runs, in one
`tf.function` per image size; a batch that fails to decode is decoded image by image to name the
bad ones.
"""

import base64
import binascii
import functools

import tensorflow as tf

from sal_tf.export import signatures
from sal_tf.serve.errors import BadInput

EXPECTED_IMAGE = "base64 of an encoded JPEG/PNG/GIF/BMP/WebP image"
CONTENT_TYPES = (  # leading bytes → content type (the formats tf.io.decode_image reads)
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"RIFF", "image/webp"),
)


def content_type(data):
    """The image content type of encoded bytes, or None when they are no known image format."""
    for magic, kind in CONTENT_TYPES:
        if data.startswith(magic):
            return kind
    return None


def decode_base64(text, field):
    """`text` (base64, or a `data:image/...;base64,` URL) → bytes of a known image format."""
    if not isinstance(text, str) or not text:
        raise BadInput(field, EXPECTED_IMAGE, "an empty value")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(field, EXPECTED_IMAGE, "text that is not base64") from None
    check_image_bytes(data, field)
    return data


def check_image_bytes(data, field):
    """Refuses bytes that are not an encoded image (empty, text, another format)."""
    if not data:
        raise BadInput(field, "an encoded JPEG/PNG/GIF/BMP/WebP image", "0 bytes")
    if content_type(data) is None:
        raise BadInput(field, "an encoded JPEG/PNG/GIF/BMP/WebP image", f"{len(data)} bytes of another format")


@functools.lru_cache(maxsize=4)
def _decoder(image_size):
    spec = tf.TensorSpec([None], tf.string)
    return tf.function(lambda b: signatures.decode_and_resize(b, image_size), input_signature=[spec])


def decode_batch(images, fields, image_size):
    """Encoded images (list of bytes) → float32 [B, H, W, 3] at `image_size`, 0..255.

    Raises:
        BadInput: naming the first of `fields` whose bytes do not decode.
    """
    decode = _decoder(tuple(int(s) for s in image_size))
    try:
        return decode(tf.constant(images, tf.string)).numpy()
    except tf.errors.InvalidArgumentError:
        pass
    for data, field in zip(images, fields):  # find the culprit
        try:
            decode(tf.constant([data], tf.string))
        except tf.errors.InvalidArgumentError:
            raise BadInput(
                field, EXPECTED_IMAGE, f"{len(data)} bytes that do not decode (truncated or corrupt)"
            ) from None
    raise BadInput(fields[0] if fields else "images", EXPECTED_IMAGE, "images that do not decode together")


def check_decodes(images, fields):
    """Decodes each image once (at a small size) to refuse corrupt ones before they are stored."""
    decode_batch(images, fields, (8, 4))

"""Uploaded images: base64 text → bytes, the header read before decoding, and decoding as the serving signature does.

* `picture(data, field, max_pixels)`: the format from the leading bytes, the size from the header
  (Pillow's format plugins read only the header; nothing is decoded), refused above
  `--max_image_pixels`; an animation (GIF / WebP) is decoded from its first frame only.
* `decode_batch`: `sal_tf.export.signatures.decode_and_resize` (`tf.io.decode_image`, RGB,
  bilinear resize to the model size), the function the exported SavedModel's `serving_default`
  runs, in one `tf.function` per image size. Decoding runs in at most `DECODE_WORKERS` calls at
  once, each of at most `DECODE_PIXELS` pixels (or one image), so one request cannot take the
  memory of the others; a call that fails is decoded image by image to name the bad ones.
"""

import base64
import binascii
import dataclasses
import functools
import io
import threading

from sal_tf.serve.failures import BadInput

EXPECTED_IMAGE = "base64 of an encoded JPEG/PNG/GIF/BMP/WebP image"
EXPECTED_BYTES = "an encoded JPEG/PNG/GIF/BMP/WebP image"
CONTENT_TYPES = (  # leading bytes → content type (the formats tf.io.decode_image reads)
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"RIFF", "image/webp"),
)
PLUGINS = {  # content type → Pillow plugin module and class (header only; no decompression-bomb warning)
    "image/jpeg": ("JpegImagePlugin", "JpegImageFile"),
    "image/png": ("PngImagePlugin", "PngImageFile"),
    "image/gif": ("GifImagePlugin", "GifImageFile"),
    "image/bmp": ("BmpImagePlugin", "BmpImageFile"),
    "image/webp": ("WebPImagePlugin", "WebPImageFile"),
}
DECODE_WORKERS = 2  # decoding calls at once, over all requests
DECODE_PIXELS = 4_000_000  # pixels of one decoding call (a batch of crops, or one large image)
_decoding = threading.BoundedSemaphore(DECODE_WORKERS)


@dataclasses.dataclass(frozen=True)
class Picture:
    """An uploaded image: `data` as uploaded (the stored crop), what is decoded, its size, its field."""

    data: bytes
    field: str
    content_type: str
    pixels: int
    decodable: bytes  # `data`, or the first frame of an animation as PNG


def content_type(data):
    """The image content type of encoded bytes, or None when they are no known image format."""
    for magic, kind in CONTENT_TYPES:
        if data.startswith(magic):
            return kind
    return None


def decode_base64(text, field):
    """`text` (base64, or a `data:image/...;base64,` URL) → bytes."""
    if not isinstance(text, str) or not text:
        raise BadInput(field, EXPECTED_IMAGE, "an empty value")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(field, EXPECTED_IMAGE, "text that is not base64") from None


def picture(data, field, max_pixels):
    """The `Picture` of encoded bytes; BadInput naming `field` for another format, a bad header, or too many pixels."""
    kind = content_type(data) if data else None
    if kind is None:
        raise BadInput(field, EXPECTED_BYTES, f"{len(data)} bytes of another format" if data else "0 bytes")
    import importlib

    module, name = PLUGINS[kind]
    try:
        image = getattr(importlib.import_module(f"PIL.{module}"), name)(io.BytesIO(data))
        width, height = image.size
        animated = getattr(image, "is_animated", False)
    except Exception:  # Pillow's plugins raise SyntaxError, OSError, struct.error, ... for a bad header
        raise BadInput(field, EXPECTED_BYTES, f"{len(data)} bytes whose header does not read (corrupt)") from None
    if width * height > max_pixels:
        raise BadInput(field, f"an image of at most {max_pixels} pixels (--max_image_pixels)", f"{width}x{height}")
    decodable = data
    if animated:  # tf.io.decode_image would decode every frame to keep the first
        frame = io.BytesIO()
        image.seek(0)
        image.convert("RGB").save(frame, "PNG")
        decodable = frame.getvalue()
    return Picture(data, field, kind, width * height, decodable)


@functools.lru_cache(maxsize=4)
def _decoder(image_size):
    import tensorflow as tf

    from sal_tf.export import signatures

    spec = tf.TensorSpec([None], tf.string)
    return tf.function(lambda b: signatures.decode_and_resize(b, image_size), input_signature=[spec])


def decoding_calls(pictures):
    """`pictures` split into consecutive runs of at most DECODE_PIXELS pixels (a larger image alone)."""
    runs, run, total = [], [], 0
    for p in pictures:
        if run and total + p.pixels > DECODE_PIXELS:
            runs.append(run)
            run, total = [], 0
        run.append(p)
        total += p.pixels
    return runs + ([run] if run else [])


def decode_batch(pictures, image_size):
    """`Picture`s → float32 [B, H, W, 3] at `image_size`, 0..255 (BadInput naming the first that does not decode)."""
    import numpy as np

    decode = _decoder(tuple(int(s) for s in image_size))
    return np.concatenate([_decode_run(decode, run) for run in decoding_calls(pictures)])


def _decode_run(decode, run):
    import tensorflow as tf

    with _decoding:
        try:
            return decode(tf.constant([p.decodable for p in run], tf.string)).numpy()
        except tf.errors.InvalidArgumentError:
            pass
        for p in run:  # find the culprit
            try:
                decode(tf.constant([p.decodable], tf.string))
            except tf.errors.InvalidArgumentError:
                raise BadInput(
                    p.field, EXPECTED_IMAGE, f"{len(p.data)} bytes that do not decode (truncated or corrupt)"
                ) from None
    raise BadInput(run[0].field, EXPECTED_IMAGE, "images that do not decode together")


def check_decodes(pictures):
    """Decodes each image once (at a small size) to refuse corrupt ones before they are stored."""
    decode_batch(pictures, (8, 4))

"""Sample images for parity checks and the Keras reference embeddings.

Parity is checked on real images when a folder is given (`--sample_images`,
e.g. a Market-1501 `query/` folder); otherwise on synthetic person-like images
(JPEG and PNG, several sizes and aspect ratios), so that decoding, resizing and
the model all see realistic inputs rather than noise.
"""

import os

import numpy as np
import tensorflow as tf

from sal_tf.export import signatures as sig
from sal_tf.utils import IMAGE_EXTENSIONS, is_image_file

# Several share 128×64 (Market-1501 size) so batched checks see more than one image.
_SIZES = ((128, 64), (256, 128), (128, 64), (300, 140), (128, 64), (97, 41), (128, 64), (64, 32))


def load_image_files(path, limit=8):
    """Encoded images of a folder (sorted, first `limit`) or of one file.

    Returns:
        list of (file name, bytes).
    """
    if os.path.isfile(path):
        files = [path]
    elif os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if is_image_file(n))[:limit]
    else:
        raise FileNotFoundError(f"--sample_images: no such file or folder {path!r}.")
    if not files:
        raise ValueError(f"--sample_images: {path!r} holds no {'/'.join(IMAGE_EXTENSIONS)} files.")
    out = []
    for f in files:
        with open(f, "rb") as fh:
            out.append((os.path.basename(f), fh.read()))
    return out


def synthetic_images(count=8, seed=0):
    """Deterministic person-like images: list of (name, JPEG or PNG bytes), varied sizes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        h, w = _SIZES[i % len(_SIZES)]
        img = _person(rng, h, w)
        if i % 2 == 0:
            data = tf.io.encode_jpeg(img, quality=90).numpy()
            name = f"synthetic_{i:03d}.jpg"
        else:
            data = tf.io.encode_png(img).numpy()
            name = f"synthetic_{i:03d}.png"
        out.append((name, data))
    return out


def _person(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    t = (yy / max(h - 1, 1))[..., None]
    img = top * (1 - t) + bottom * t
    cx = w * rng.uniform(0.4, 0.6)
    head = ((yy - 0.12 * h) / (0.08 * h)) ** 2 + ((xx - cx) / (0.12 * w)) ** 2 < 1
    torso = (yy > 0.2 * h) & (yy < 0.55 * h) & (np.abs(xx - cx) < 0.22 * w)
    legs = (yy >= 0.55 * h) & (yy < 0.95 * h) & (np.abs(xx - cx) < 0.16 * w) & (np.abs(xx - cx) > 0.02 * w)
    for mask, colour in (
        (torso, rng.uniform(0, 255, 3)),
        (legs, rng.uniform(0, 255, 3)),
        (head, np.array([224.0, 172.0, 140.0]) * rng.uniform(0.6, 1.1)),
    ):
        img[mask] = colour
    img += rng.normal(0, 8, img.shape)
    return tf.constant(np.clip(img, 0, 255).astype(np.uint8))


def decode_batch(image_bytes, image_size):
    """Encoded images → float32 [N, H, W, 3], with the serving graph's decode and resize."""
    with tf.device("/cpu:0"):
        images = [sig.resize(sig.decode_image(tf.constant(b)), image_size) for b in image_bytes]
        return tf.stack(images).numpy()


def keras_embeddings(embedding_model, images, batch_size=16):
    """L2-normalised embeddings of float32 RGB images [N, H, W, 3] by the Keras model, on CPU.

    The reference of every parity check. Run on the CPU because GPUs may use TF32
    matmuls, which change the 4th significant digit.
    """
    out = []
    with tf.device("/cpu:0"):
        for start in range(0, len(images), batch_size):
            e = np.asarray(embedding_model(images[start : start + batch_size], training=False), np.float64)
            out.append(e)
    e = np.concatenate(out, 0)
    return (e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)).astype(np.float32)

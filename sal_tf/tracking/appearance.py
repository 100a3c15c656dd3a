"""Appearance models compared by the tracking benchmark, behind one interface.

`embed_frames(frames, boxes, channels)` → one float32 [N_i, D] array of unit rows per frame (zero
rows for boxes without area, `sal_tf.inference.boxes.pixel_boxes`):

* `NoAppearance` ("iou"): a constant row; the tracker runs with its appearance stage off, so only
  motion (Kalman-predicted boxes and IoU) associates.
* `HistogramAppearance` ("histogram"): the classic colour baseline: each box resized to 64×32 as the
  encoder does, HSV joint histograms (8 hue × 4 saturation × 4 value bins) of its upper and lower
  halves, square-rooted so that the cosine distance is the Hellinger / Bhattacharyya distance.
* `SALAppearance` ("sal"): SAL embeddings of the boxes (`sal_tf.inference.boxes.BoxEncoder`, any
  model form), several frames per model call.
"""

import numpy as np

from sal_tf.inference.backend import DEFAULT_BATCH
from sal_tf.inference.boxes import BoxEncoder, pixel_boxes
from sal_tf.inference.resize import check_channels, check_frame, crop_and_resize

KINDS = ("iou", "histogram", "sal")
HISTOGRAM_SIZE = (64, 32)
HISTOGRAM_BINS = (8, 4, 4)  # hue, saturation, value


def _per_frame(frames, boxes, channels, rows_of):
    """Applies `rows_of(frame, pixel boxes [M, 4], channels)` to the boxes with area of each frame; zero rows
    for the others."""
    out = []
    check_channels(channels)
    for frame, b in zip(frames, boxes):
        image = check_frame(frame)
        pixels, has_area = pixel_boxes(b, image.shape)
        rows = rows_of(image, pixels[has_area], channels)
        full = np.zeros((len(has_area), rows.shape[1]), np.float32)
        full[has_area] = rows
        out.append(full)
    return out


class NoAppearance:
    """Motion only: one constant unit row per box (the tracker's appearance gate is switched off)."""

    kind, dim = "iou", 1

    def embed_frames(self, frames, boxes, channels="rgb"):
        return _per_frame(frames, boxes, channels, lambda image, pixels, _: np.ones((len(pixels), 1), np.float32))


class HistogramAppearance:
    """HSV colour histograms of the upper and lower halves of each box (see the module docstring)."""

    kind = "histogram"
    dim = 2 * int(np.prod(HISTOGRAM_BINS))

    def embed_frames(self, frames, boxes, channels="rgb"):
        return _per_frame(frames, boxes, channels, self._histograms)

    def _histograms(self, image, pixels, channels):
        from matplotlib.colors import rgb_to_hsv

        crops = crop_and_resize(image, pixels, HISTOGRAM_SIZE, channels)
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        hsv = rgb_to_hsv(np.clip(crops / 255.0, 0, 1))
        bins = np.array(HISTOGRAM_BINS)
        index = np.minimum((hsv * bins).astype(np.int64), bins - 1)
        cell = (index[..., 0] * bins[1] + index[..., 1]) * bins[2] + index[..., 2]  # [M, H, W]
        half = (np.arange(HISTOGRAM_SIZE[0]) >= HISTOGRAM_SIZE[0] // 2).astype(np.int64)[None, :, None]
        per_box = self.dim * np.arange(len(crops))[:, None, None]
        counts = np.bincount((per_box + half * (self.dim // 2) + cell).ravel(), minlength=len(crops) * self.dim)
        rows = np.sqrt(counts.reshape(len(crops), self.dim).astype(np.float32))
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class SALAppearance:
    """SAL embeddings of the boxes through a `BoxEncoder`."""

    kind = "sal"

    def __init__(self, model, batch_size=DEFAULT_BATCH, threads=None, precision="float32"):
        self.encoder = (
            model if isinstance(model, BoxEncoder) else BoxEncoder(model, batch_size, threads, precision=precision)
        )
        self.dim = self.encoder.embedding_dim

    def embed_frames(self, frames, boxes, channels="rgb"):
        return self.encoder.embed_frames(frames, boxes, channels)


def appearance_model(kind, model=None, threads=None, precision="float32"):
    """The appearance model `kind` ("iou" | "histogram" | "sal"; "sal" needs `model`, run at `precision`)."""
    if kind not in KINDS:
        raise ValueError(f"--tracker must be one of {', '.join(KINDS)}; got {kind!r}.")
    if kind == "sal":
        if model is None:
            raise ValueError(
                "--tracker=sal needs --model (a model_dir, .keras, SavedModel, .onnx or .tflite, or a folder of several)."
            )
        return SALAppearance(model, threads=threads, precision=precision)
    return NoAppearance() if kind == "iou" else HistogramAppearance()

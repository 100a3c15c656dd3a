"""DeepSORT (`deep_sort_realtime`) with an appearance model from `sal_tf.tracking.appearance`.

deep_sort_realtime takes the embeddings from outside (`update_tracks(detections, embeds=...)`),
so no PyTorch is involved. Association per frame (Wojke et al. 2017): a matching cascade of the
confirmed tracks by appearance (nearest cosine distance to the track's last `nn_budget` rows ≤
`max_cosine_distance`, gated by the Kalman filter's Mahalanobis distance), then IoU matching of the
rest (tentative tracks and those seen in the previous frame). A track is reported once confirmed
(`n_init` hits) and in the frames where a detection updated it; it is dropped `max_age` frames
after its last detection. Motion only ("iou") runs the same tracker with the appearance stage
off (a gate no distance passes), so a track missed for more than one frame cannot be recovered.

`SETTINGS` holds the per-appearance values the benchmark uses (chosen on the tuning sequences of
`sal_tf/data/demo_sequences.py`, `TUNING_SEED`; see BUILD.md "Tracking").
"""

import dataclasses
import itertools
import time

import numpy as np

from sal_tf.inference.boxes import pixel_boxes

APPEARANCE_OFF = -1.0  # a cosine-distance gate no pair passes: DeepSORT's appearance stage does nothing


@dataclasses.dataclass(frozen=True)
class TrackerSettings:
    """DeepSORT's knobs (see the module docstring); `max_cosine_distance=None`: appearance off."""

    max_age: int
    n_init: int
    max_cosine_distance: float | None
    nn_budget: int | None = 100
    max_iou_distance: float = 0.7


SETTINGS = {  # the best IDF1 of a grid on the tuning sequences (benchmarks/tracking.py --tune)
    "iou": TrackerSettings(max_age=30, n_init=1, max_cosine_distance=None, max_iou_distance=0.9),
    "histogram": TrackerSettings(max_age=60, n_init=1, max_cosine_distance=0.15),
    "sal": TrackerSettings(max_age=120, n_init=1, max_cosine_distance=0.1),
}


def settings_for(kind, **overrides):
    """`SETTINGS[kind]` with the overrides that are not None."""
    return dataclasses.replace(SETTINGS[kind], **{k: v for k, v in overrides.items() if v is not None})


class Tracker:
    """One DeepSORT tracker: `update(boxes, confidences, features)` per frame → reported tracks."""

    def __init__(self, settings):
        from deep_sort_realtime.deepsort_tracker import DeepSort

        gate = APPEARANCE_OFF if settings.max_cosine_distance is None else settings.max_cosine_distance
        self.settings = settings
        self.deepsort = DeepSort(
            max_age=settings.max_age,
            n_init=settings.n_init,
            max_cosine_distance=gate,
            nn_budget=settings.nn_budget,
            max_iou_distance=settings.max_iou_distance,
            embedder=None,
        )

    def update(self, boxes, confidences, features):
        """xyxy [N, 4] (all with area), confidences [N], unit rows [N, D] → [(id, x1, y1, x2, y2, conf)]."""
        detections = [
            ([x1, y1, x2 - x1, y2 - y1], float(c), "person") for (x1, y1, x2, y2), c in zip(boxes, confidences)
        ]
        tracks = self.deepsort.update_tracks(detections, embeds=list(features))
        out = []
        for t in tracks:
            if t.is_confirmed() and t.time_since_update == 0:
                x, y, w, h = t.to_ltwh(orig=True, orig_strict=True)  # the detection's own box
                out.append((int(t.track_id), x, y, x + w, y + h, float(t.det_conf or 0.0)))
        return out


def _boxes_of(detections, frame_number, shape):
    """(xyxy, confidence) of a frame's detections that have area inside it."""
    boxes, conf = detections.get(frame_number, (np.zeros((0, 4)), np.zeros(0)))
    has_area = pixel_boxes(boxes, shape)[1]
    return boxes[has_area], conf[has_area]


def track(source, detections, appearance, settings, batch_frames=16, on_frame=None, progress=None):
    """Runs DeepSORT over `source` (`mot.Sequence` / `mot.Video`) with `appearance`.

    Args:
        detections: {frame: (xyxy [n, 4], confidence [n])} (1-based frames).
        appearance: an appearance model (`appearance.appearance_model`).
        batch_frames: frames whose boxes are embedded in one call (the detections are known ahead).
        on_frame: called with (frame number, frame, reported tracks) after each frame.
        progress: a `sal_tf.utils.progress.Progress` updated per frame.

    Returns:
        (rows [(frame, id, x1, y1, x2, y2, conf)], stats: frames, boxes, appearance_seconds, association_seconds).
    """
    tracker, rows = Tracker(settings), []
    stats = {"frames": 0, "boxes": 0, "appearance_seconds": 0.0, "association_seconds": 0.0}
    frames = iter(source.frames())
    while chunk := list(itertools.islice(frames, batch_frames)):
        dets = [_boxes_of(detections, n, image.shape) for n, image in chunk]
        start = time.perf_counter()
        features = appearance.embed_frames([image for _, image in chunk], [b for b, _ in dets], source.channels)
        stats["appearance_seconds"] += time.perf_counter() - start
        for (number, image), (boxes, conf), feats in zip(chunk, dets, features):
            start = time.perf_counter()
            reported = tracker.update(boxes, conf, feats)
            stats["association_seconds"] += time.perf_counter() - start
            rows += [(number, *r) for r in reported]
            stats["frames"], stats["boxes"] = stats["frames"] + 1, stats["boxes"] + len(boxes)
            if on_frame is not None:
                on_frame(number, image, reported)
            if progress is not None:
                progress.update(stats["frames"])
    return rows, stats

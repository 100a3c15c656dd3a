"""Per camera: the single-camera tracker's tracks as tracklets with a pooled embedding and representative crops.

Each camera runs DeepSORT (`sal_tf.tracking.deepsort.Tracker`, the appearance model's settings) on
its detections; every box a track reports keeps its embedding and a **quality** weight

    w = score · min(1, h / 128) · (1 − max IoU with the frame's other boxes)² · (0.5 if cut by the frame edge)

(detector confidence; small boxes are blurry; a box overlapping another mixes two people; a box cut
by the border shows part of a person). A tracklet's embedding is the quality-weighted mean of its
rows, re-normalised (Σ w·f / ‖Σ w·f‖) — set-to-set re-ID by weighted pooling (e.g. the quality-aware
aggregation of Liu et al., "Quality Aware Network for Set to Set Recognition", CVPR 2017) — and it
keeps its `CROPS` best-quality crops. A track unseen for longer than `LOST_SECONDS` is cut there
(`split_gaps`); one whose appearance jumps can be cut too (`split`, off by default: `sal_tf.mtmc.run.SPLIT_FACTOR`).
"""

import dataclasses
import heapq
import itertools
import time

import numpy as np

from sal_tf.inference.boxes import pixel_boxes
from sal_tf.tracking import deepsort
from sal_tf.tracking.run import BATCH_FRAMES

CROPS = 6  # representative crops kept per track (a track split later shares them out)
GREY_LEVEL = 118.0  # the mean colour `gray_world` brings every camera to
SPLIT_WINDOW = 5  # boxes on each side of a cut compared by `split`
LOST_SECONDS = 2.0  # `split_gaps`: a track unseen for longer is cut (tuning cameras, seed 41: 0.5 / 1 / 2 / 4 s tried)
PART_STRIDE = 100000  # part k of track t is numbered t + PART_STRIDE · k (`split`, `split_gaps`, `renumbered`)
FULL_HEIGHT = 128.0  # box height (px) from which size no longer adds quality (the demo model's input height)


@dataclasses.dataclass
class Tracklet:
    """One track of one camera: its boxes (frames 1-based, xyxy), quality weights, pooled unit feature, crops."""

    camera: str
    track: int
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    feature: np.ndarray
    start: float  # seconds on the run's common time line (`sources.Camera.seconds`)
    end: float
    crops: list = dataclasses.field(default_factory=list)  # [(weight, frame, RGB uint8 crop)], best first
    rows: np.ndarray | None = None  # the unit embedding of every box [n, D]
    fps: float = 10.0

    @property
    def first(self):
        return int(self.frames[0])

    @property
    def last(self):
        return int(self.frames[-1])


def box_iou(boxes):
    """IoU [N, N] of xyxy boxes with themselves."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    lo, hi = np.maximum(b[:, None, :2], b[None, :, :2]), np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-12)


def quality(boxes, scores, frame_shape):
    """The quality weight of each box of a frame (see the module docstring), float64 [N]."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0)
    iou = box_iou(boxes)
    np.fill_diagonal(iou, 0.0)
    overlap = iou.max(axis=1) if len(boxes) > 1 else np.zeros(len(boxes))
    size = np.minimum(1.0, (boxes[:, 3] - boxes[:, 1]) / FULL_HEIGHT)
    height, width = frame_shape[:2]
    cut = (boxes[:, 0] <= 1) | (boxes[:, 1] <= 1) | (boxes[:, 2] >= width - 1) | (boxes[:, 3] >= height - 1)
    return np.clip(scores, 0, 1) * size * (1.0 - overlap) ** 2 * np.where(cut, 0.5, 1.0) + 1e-6


class _Observations:
    """What a camera's tracks reported, frame by frame, and each track's best crops."""

    def __init__(self, keep_crops):
        self.rows, self.keep_crops, self.crops = {}, keep_crops, {}

    def add(self, track_id, frame_number, rgb, box, score, weight, feature):
        self.rows.setdefault(track_id, []).append((frame_number, box, score, weight, feature))
        best = self.crops.setdefault(track_id, [])
        if len(best) < self.keep_crops or weight > best[0][0]:
            x1, y1, x2, y2 = pixel_boxes(box[None], rgb.shape)[0][0]
            item = (float(weight), int(frame_number), np.ascontiguousarray(rgb[y1:y2, x1:x2]))
            (heapq.heappush if len(best) < self.keep_crops else heapq.heapreplace)(best, item)


def _frame_detections(detector, chunk, channels):
    """(RGB frames, [(boxes with area, scores)]) of a chunk of (number, frame)."""
    rgb = [image[..., ::-1] if channels == "bgr" else image for _, image in chunk]
    found = detector.detect([n for n, _ in chunk], rgb)
    out = []
    for image, (boxes, scores) in zip(rgb, found):
        keep = pixel_boxes(boxes, image.shape)[1]
        out.append((np.asarray(boxes, np.float64)[keep], np.asarray(scores, np.float64)[keep]))
    return rgb, out


def gray_world(frames, level=GREY_LEVEL):
    """Per-channel uint8 look-up tables [3, 256] that bring the frames' mean colour to grey `level`.

    Gray-world colour constancy (Buchsbaum 1980): a scene's average colour is taken to be grey, so a
    camera's colour cast and exposure are the gains that make it so. Estimated once per camera on
    its first frames and applied to every frame before the appearance model sees it: the white
    balance and light of the cameras then differ less (the same for SAL and the histograms).
    """
    mean = np.mean([np.asarray(f, np.float64).reshape(-1, 3).mean(0) for f in frames], axis=0)
    gains = level / np.maximum(mean, 1.0)
    return np.clip(np.round(np.arange(256)[None, :] * gains[:, None]), 0, 255).astype(np.uint8)


def balanced(frame, lut):
    """An RGB uint8 frame through per-channel look-up tables."""
    return np.stack([lut[c][frame[..., c]] for c in range(3)], axis=-1)


def track_camera(camera, detector, appearance, settings, batch_frames=BATCH_FRAMES, keep_crops=CROPS, on_frame=None,
                 white_balance=True):  # fmt: skip
    """Runs the tracker over one `sources.Camera`; returns (tracklets sorted by start, stats).

    `on_frame(number, rgb frame, [(track id, x1, y1, x2, y2, score)])` is called per frame.
    `white_balance`: the appearance model sees the frames through `gray_world` (estimated on the
    first `batch_frames` frames). Stats: frames, boxes, detection / appearance / association seconds.
    """
    tracker, seen, lut = deepsort.Tracker(settings), _Observations(keep_crops), None
    stats = {"frames": 0, "boxes": 0, "detection_seconds": 0.0, "appearance_seconds": 0.0, "association_seconds": 0.0}
    frames = iter(camera.source.frames())
    while chunk := list(itertools.islice(frames, batch_frames)):
        clock = time.perf_counter()
        rgb, dets = _frame_detections(detector, chunk, camera.source.channels)
        stats["detection_seconds"] += time.perf_counter() - clock
        clock = time.perf_counter()
        if white_balance:
            lut = gray_world(rgb) if lut is None else lut
            rgb = [balanced(image, lut) for image in rgb]
        features = appearance.embed_frames(rgb, [b for b, _ in dets], "rgb")
        stats["appearance_seconds"] += time.perf_counter() - clock
        clock = time.perf_counter()
        for (number, _), image, (boxes, scores), feats in zip(chunk, rgb, dets, features):
            reported = _update(tracker, seen, number, image, boxes, scores, feats)
            stats["frames"], stats["boxes"] = stats["frames"] + 1, stats["boxes"] + len(boxes)
            if on_frame is not None:
                on_frame(number, image, reported)
        stats["association_seconds"] += time.perf_counter() - clock
    stats["tracks"] = len(seen.rows)
    return build_tracklets(camera, seen), stats


def _update(tracker, seen, number, image, boxes, scores, features):
    """One frame through DeepSORT; records each reported box with its own detection's row and quality."""
    detections = [([x1, y1, x2 - x1, y2 - y1], float(c), "person") for (x1, y1, x2, y2), c in zip(boxes, scores)]
    tracks = tracker.deepsort.update_tracks(detections, embeds=list(features), others=list(range(len(boxes))))
    weights, reported = quality(boxes, scores, image.shape), []
    for t in tracks:
        if t.is_confirmed() and t.time_since_update == 0 and t.get_det_supplementary() is not None:
            i = int(t.get_det_supplementary())
            seen.add(int(t.track_id), number, image, boxes[i], scores[i], weights[i], features[i])
            reported.append((int(t.track_id), *boxes[i], float(scores[i])))
    return reported


def pooled(features, weights):
    """Quality-weighted mean of unit rows, re-normalised (a zero row if nothing is left)."""
    total = (np.asarray(weights, np.float64)[:, None] * np.asarray(features, np.float64)).sum(0)
    norm = np.linalg.norm(total)
    return (total / norm if norm > 0 else total).astype(np.float32)


def build_tracklets(camera, seen):
    """`Tracklet`s of a camera's observations, sorted by first frame."""
    out = []
    for track_id, rows in seen.rows.items():
        frames = np.array([r[0] for r in rows], np.int64)
        weights, features = np.array([r[3] for r in rows]), np.stack([r[4] for r in rows]).astype(np.float32)
        crops = sorted(seen.crops.get(track_id, []), key=lambda c: -c[0])
        boxes, scores = np.stack([r[1] for r in rows]), np.array([r[2] for r in rows])
        start, end = camera.seconds(frames[0]), camera.seconds(frames[-1])
        feature = pooled(features, weights)
        out.append(Tracklet(camera.name, track_id, frames, boxes, scores, weights, feature, start, end, crops,
                            features, camera.fps))  # fmt: skip
    return sorted(out, key=lambda t: (t.first, t.track))


def cut_point(rows, threshold, window=SPLIT_WINDOW):
    """The index where the mean embeddings of the `window` rows before and after it differ most, if by more
    than `threshold` (cosine distance); else None."""
    if len(rows) < 2 * window:
        return None
    c = np.concatenate([np.zeros((1, rows.shape[1])), np.cumsum(rows.astype(np.float64), 0)])
    cuts = np.arange(window, len(rows) - window + 1)
    before, after = c[cuts] - c[cuts - window], c[cuts + window] - c[cuts]
    norms = np.maximum(np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1), 1e-12)
    distance = 1.0 - (before * after).sum(1) / norms
    best = int(np.argmax(distance))
    return int(cuts[best]) if distance[best] > threshold else None


def split(tracklet, threshold, window=SPLIT_WINDOW):
    """A track cut where its appearance jumps (a tracker's identity switch: two people crossing), recursively.

    Tracks of people who cross or walk side by side may jump from one person to the other; a cut
    between `window` boxes whose mean embeddings are more than `threshold` apart makes two
    tracklets, which linking joins again when they are one person (a change of view). Parts are
    numbered `track`, `track + 100000`, `track + 200000`, … (local ids stay unique in a camera).
    """
    if tracklet.rows is None:
        return [tracklet]
    parts, queue = [], [(0, len(tracklet.frames))]
    while queue:
        lo, hi = queue.pop()
        cut = cut_point(tracklet.rows[lo:hi], threshold, window)
        if cut is None:
            parts.append((lo, hi))
        else:
            queue += [(lo, lo + cut), (lo + cut, hi)]
    if len(parts) == 1:
        return [tracklet]
    return [_part(tracklet, lo, hi, k) for k, (lo, hi) in enumerate(sorted(parts))]


def split_gaps(tracklet, seconds=LOST_SECONDS):
    """A track cut wherever it went unseen for more than `seconds` (a lost track the tracker took up again).

    The single-camera tracker keeps a lost track for `max_age` frames and takes it up again by its
    Kalman prediction and appearance gate; after a longer absence the linking decides instead, with
    every camera's tracklets and the hard constraints (a wrong take-up would otherwise stretch the
    track's time span and block its person's other tracklets). Parts are numbered as by `split`.
    """
    cuts = np.nonzero(np.diff(tracklet.frames) > seconds * tracklet.fps)[0] + 1
    if not len(cuts) or tracklet.rows is None:
        return [tracklet]
    return [_part(tracklet, lo, hi, k) for k, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(tracklet.frames)]))]


def renumbered(parts):
    """Parts of a camera's tracks (`split_gaps`, `split`, in any order) numbered `track + PART_STRIDE · k` again, k in
    time order per original track, so that local ids stay unique in a camera."""
    out, count = [], {}
    for t in sorted(parts, key=lambda t: (t.camera, t.track % PART_STRIDE, t.first)):
        original = (t.camera, t.track % PART_STRIDE)
        k = count[original] = count.get(original, -1) + 1
        out.append(dataclasses.replace(t, track=original[1] + PART_STRIDE * k))
    return out


def _part(t, lo, hi, k):
    frames = t.frames[lo:hi]
    crops = [c for c in t.crops if frames[0] <= c[1] <= frames[-1]]
    start, end = t.start + (frames[0] - t.frames[0]) / t.fps, t.start + (frames[-1] - t.frames[0]) / t.fps
    feature = pooled(t.rows[lo:hi], t.weights[lo:hi])
    return Tracklet(t.camera, t.track + PART_STRIDE * k, frames, t.boxes[lo:hi], t.scores[lo:hi], t.weights[lo:hi],
                    feature, start, end, crops, t.rows[lo:hi], t.fps)  # fmt: skip

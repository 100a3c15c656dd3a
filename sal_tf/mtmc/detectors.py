"""The boxes of each camera's frames: det/gt files, OpenCV's HOG people detector, a user's ONNX detector.

`--detections`:

* `det` — a sequence's `det/det.txt` (a video's `ROOT/<camera>.txt`), MOT rows `frame,-1,x,y,w,h,conf`;
* `gt` — the oracle: `gt/gt.txt` rows that count (`sal_tf.tracking.mot.ground_truth_rows`);
* `hog` — OpenCV's HOG + linear SVM people detector (Dalal & Triggs 2005; the weights ship inside
  OpenCV 4, nothing to download; requirements-track.txt pins opencv-python<5 because OpenCV 5 moved
  it out of the main module — with OpenCV 5 the error says so): 64×128 windows, so people shorter
  than ~128 px are missed unless `upscale` enlarges the frame; boxes clipped to the frame; slow on a
  CPU (BUILD.md "Multi-camera tracking" gives its figures);
* a path to an `.onnx` detector: input float32 `[1, 3, H, W]` RGB / 255 (a fixed H, W: the frame
  is resized to it; dynamic: the frame as it is), first output `[N, 6]` (or `[1, N, 6]`) rows
  `x1, y1, x2, y2, score, class` in the input's pixels — the YOLO-style export with NMS inside
  (e.g. Ultralytics `export(format="onnx", nms=True)`); rows of `class` `person_class` with `score`
  ≥ `min_score` are kept.

Every detector: `detect(numbers, frames)` (1-based frame numbers, RGB uint8 frames) → one
(xyxy float64 [n, 4], confidence [n]) per frame.
"""

import os

import numpy as np

from sal_tf.tracking import mot
from sal_tf.tracking import run as tracking_run

FILE_KINDS = ("det", "gt")


class FileDetections:
    """Detections read from a MOT file ahead of time ({frame: (xyxy, conf)})."""

    def __init__(self, by_frame):
        self.by_frame = by_frame

    def detect(self, numbers, frames):
        empty = (np.zeros((0, 4)), np.zeros(0))
        return [self.by_frame.get(int(n), empty) for n in numbers]


class HOGDetector:
    """OpenCV's default people detector (`cv2.HOGDescriptor_getDefaultPeopleDetector`), boxes merged by NMS."""

    def __init__(self, upscale=1.0, min_score=0.3, nms_iou=0.45):
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise ValueError(
                f"--detections=hog: OpenCV {cv2.__version__} has no HOGDescriptor (OpenCV 5 moved it out of the main "
                "module); install opencv-python<5, or pass an .onnx detector or det files."
            )
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale, self.min_score, self.nms_iou = float(upscale), float(min_score), float(nms_iou)

    def detect(self, numbers, frames):
        return [self._one(frame) for frame in frames]

    def _one(self, frame):
        import cv2

        image = frame if self.upscale == 1.0 else cv2.resize(frame, None, fx=self.upscale, fy=self.upscale)
        rects, weights = self.hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if not len(rects):
            return np.zeros((0, 4)), np.zeros(0)
        scores = np.asarray(weights, np.float64).reshape(-1)
        keep = np.asarray(  # () when every score is under min_score
            cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], scores.tolist(), self.min_score, self.nms_iou),
            np.int64,
        ).reshape(-1)
        rects, scores = np.asarray(rects, np.float64)[keep], scores[keep]
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1) / self.upscale
        height, width = frame.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])  # windows padded past the border
        return boxes, np.clip(scores, 0, None) / (1 + np.clip(scores, 0, None))  # SVM margin → (0, 1)


class ONNXDetector:
    """A user's ONNX detector with `[N, 6]` output (see the module docstring), through ONNX Runtime."""

    def __init__(self, path, person_class=0, min_score=0.3, threads=None):
        import onnxruntime

        if not os.path.isfile(path):
            raise FileNotFoundError(f"--detections {path!r}: no such ONNX file.")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for a bad file
            raise ValueError(f"--detections {path}: ONNX Runtime cannot load it ({str(e).splitlines()[0]}).") from None
        (self.input,) = self.session.get_inputs()[:1]
        shape = self.input.shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise ValueError(f"--detections {path}: expected an input [1, 3, H, W]; got {shape}.")
        self.size = (shape[2], shape[3]) if all(isinstance(s, int) for s in shape[2:]) else None
        self.path, self.person_class, self.min_score = path, int(person_class), float(min_score)

    def detect(self, numbers, frames):
        return [self._one(frame) for frame in frames]

    def _one(self, frame):
        from PIL import Image

        height, width = frame.shape[:2]
        image = frame if self.size is None else np.asarray(Image.fromarray(frame).resize(self.size[::-1]))
        x = (image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = np.asarray(self.session.run(None, {self.input.name: x})[0])
        rows = out[0] if out.ndim == 3 and out.shape[0] == 1 else out
        if rows.ndim != 2 or rows.shape[1] != 6:
            raise ValueError(
                f"--detections {self.path}: expected the first output [N, 6] (x1, y1, x2, y2, score, class); "
                f"got shape {list(out.shape)}."
            )
        rows = rows[(np.rint(rows[:, 5]) == self.person_class) & (rows[:, 4] >= self.min_score)].astype(np.float64)
        scale = np.ones(4) if self.size is None else np.array([width / self.size[1], height / self.size[0]] * 2)
        return rows[:, :4] * scale, rows[:, 4]


def detector_for(spec, camera, min_visibility, threads=None):
    """The detector of `--detections=spec` for one `sources.Camera`; errors name the file or flag."""
    if spec == "hog":
        return HOGDetector()
    if spec.lower().endswith(".onnx"):
        return ONNXDetector(spec, threads=threads)
    if spec not in FILE_KINDS:
        raise ValueError(f"--detections must be det, gt, hog or the path of an .onnx detector; got {spec!r}.")
    if camera.source.folder is None:  # a video: its ROOT/<camera>.txt
        if spec == "gt":
            raise ValueError(
                f"--detections=gt needs a sequence folder's gt/gt.txt; {camera.source.path!r} is a video: use det "
                f"(its {camera.name}.txt beside it), hog or an .onnx detector."
            )
        if camera.det_file is None:
            raise ValueError(
                f"--detections=det: the video {camera.source.path!r} has no {camera.name}.txt det file beside it; "
                "add one (MOT rows frame,-1,x,y,w,h,conf) or use --detections=hog or an .onnx detector."
            )
        return FileDetections(mot.detections_of(mot.read_rows(camera.det_file, "det file")))
    return FileDetections(tracking_run.load_detections(camera.source, spec, min_visibility))

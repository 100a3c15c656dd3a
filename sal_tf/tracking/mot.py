"""MOTChallenge files and frame sources: sequence folders, det / gt / result files, video files.

A sequence folder (MOT16/17/20 layout, as `sal_tf/data/demo_sequences.py` writes it) holds
`seqinfo.ini`, `img1/000001.jpg ...`, `det/det.txt` and, for training sequences, `gt/gt.txt`.
Rows are comma-separated: `frame, id, x, y, w, h, conf, ...` with 1-based frames and boxes in
pixels (left, top, width, height). In `gt.txt` column 7 is the "consider" flag, column 8 the class
(1: pedestrian) and column 9 the visibility. Result files are `frame,id,x,y,w,h,conf,-1,-1,-1`.
"""

import configparser
import os

import numpy as np

SEQINFO = "seqinfo.ini"
DET_FILE = os.path.join("det", "det.txt")
GT_FILE = os.path.join("gt", "gt.txt")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v")


def read_rows(path, what="MOTChallenge file"):
    """float64 [N, C ≥ 6] of a MOT text file (an empty file: [0, 10]); errors name the file and line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist.")
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                values = [float(v) for v in line.replace(" ", "").strip().split(",")]
            except ValueError:
                raise ValueError(
                    f"{path}:{number}: expected comma-separated numbers, got {line.strip()[:80]!r}"
                ) from None
            if len(values) < 6:
                raise ValueError(f"{path}:{number}: expected at least frame,id,x,y,w,h; got {len(values)} values.")
            rows.append(values)
    width = max((len(r) for r in rows), default=10)
    return np.array([r + [-1.0] * (width - len(r)) for r in rows], np.float64).reshape(-1, width)


def detections_of(rows):
    """{frame: (xyxy [n, 4], confidence [n])} of det.txt rows."""
    out = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == frame]
        conf = r[:, 6] if r.shape[1] > 6 else np.ones(len(r))
        out[int(frame)] = (ltwh_to_xyxy(r[:, 2:6]), conf)
    return out


def ground_truth_rows(rows, min_visibility):
    """The gt.txt rows that count: considered (col 7 ≠ 0), pedestrians (col 8 = 1), visibility ≥ `min_visibility`."""
    keep = np.ones(len(rows), bool)
    if rows.shape[1] > 6:
        keep &= rows[:, 6] != 0
    if rows.shape[1] > 7:
        keep &= rows[:, 7] == 1
    if rows.shape[1] > 8:
        keep &= rows[:, 8] >= min_visibility
    return rows[keep]


def oracle_detections(gt_rows):
    """{frame: (xyxy, confidence 1)} of ground-truth rows (an oracle detector)."""
    out = detections_of(gt_rows[:, :6])
    return {f: (boxes, np.ones(len(boxes))) for f, (boxes, _) in out.items()}


def ltwh_to_xyxy(ltwh):
    b = np.asarray(ltwh, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)


def write_results(path, rows):
    """MOTChallenge result file: rows (frame, id, x1, y1, x2, y2, conf) → `frame,id,x,y,w,h,conf,-1,-1,-1`."""
    with open(path, "w") as f:
        for frame, tid, x1, y1, x2, y2, conf in rows:
            f.write(f"{int(frame)},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.3f},-1,-1,-1\n")


class Sequence:
    """A MOTChallenge sequence folder: `frames()` yields RGB uint8 frames; `channels` is "rgb"."""

    channels = "rgb"

    def __init__(self, folder):
        info = configparser.ConfigParser()
        path = os.path.join(folder, SEQINFO)
        if not info.read(path) or "Sequence" not in info:
            raise FileNotFoundError(
                f"{path!r} is missing or has no [Sequence] section; expected a MOTChallenge sequence."
            )
        s = info["Sequence"]
        self.folder = folder
        self.name = s.get("name", os.path.basename(os.path.normpath(folder)))
        self.length, self.fps = int(s.get("seqLength", 0)), float(s.get("frameRate", 25))
        self.image_dir = os.path.join(folder, s.get("imDir", "img1"))
        self.extension = s.get("imExt", ".jpg")
        self.size = (int(s.get("imHeight", 0)), int(s.get("imWidth", 0)))

    def frame_path(self, frame):
        return os.path.join(self.image_dir, f"{frame:06d}{self.extension}")

    def frames(self):
        """(1-based frame number, RGB uint8 [H, W, 3]) for every frame of `seqLength`."""
        from PIL import Image

        for frame in range(1, self.length + 1):
            path = self.frame_path(frame)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{self.folder}: frame {path!r} is missing (seqLength {self.length}).")
            with Image.open(path) as image:
                yield frame, np.asarray(image.convert("RGB"))

    def file(self, relative):
        return os.path.join(self.folder, relative)


class Video:
    """A video file read with OpenCV: `frames()` yields BGR frames as OpenCV decodes them; `channels` "bgr"."""

    channels = "bgr"

    def __init__(self, path):
        import cv2

        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise ValueError(f"{path!r}: OpenCV cannot open this video.")
        self.path, self.folder, self.name = path, None, os.path.splitext(os.path.basename(path))[0]
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        self.length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        capture.release()

    def frames(self):
        import cv2

        capture = cv2.VideoCapture(self.path)
        frame = 0
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                frame += 1
                yield frame, image
        finally:
            capture.release()


def open_sources(path):
    """The sequences at `path`: a video file, a sequence folder, or a folder of sequence folders."""
    if os.path.isfile(path):
        if not path.lower().endswith(VIDEO_EXTENSIONS):
            raise ValueError(f"--source {path!r}: not a video file ({', '.join(VIDEO_EXTENSIONS)}) nor a folder.")
        return [Video(path)]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--source {path!r} does not exist.")
    if os.path.isfile(os.path.join(path, SEQINFO)):
        return [Sequence(path)]
    found = sorted(os.path.join(path, n) for n in os.listdir(path) if os.path.isfile(os.path.join(path, n, SEQINFO)))
    if not found:
        raise ValueError(f"--source {path!r} holds no {SEQINFO}, nor sub-folders with one (MOTChallenge sequences).")
    return [Sequence(f) for f in found]

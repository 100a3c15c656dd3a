"""The cameras of a multi-camera run and their clocks, checked before any work is done.

`--source=ROOT` holds one camera per entry, named by it: a MOTChallenge sequence folder
(`ROOT/<camera>/seqinfo.ini`, `img1/`, `det/det.txt`, optional `gt/gt.txt`) or a video file
(`ROOT/<camera>.mp4`, any of `sal_tf.tracking.mot.VIDEO_EXTENSIONS`; its detections, if any, in
`ROOT/<camera>.txt`, MOT det rows).

Clocks: a sequence's `seqinfo.ini` may hold `startTime=` (ISO 8601, the wall-clock time of frame 1);
`--start_times=cam:ISO,...` gives (or overrides) it, and is how videos get one. Frame f of a camera
is at `start + (f − 1) / frameRate`. With every camera timed, all share one time line (seconds after
the earliest start). If any camera has no start time, the cameras are ordered by name and laid end to
end (each starting when the previous one's recording ends), with a warning: people can then still be
linked across cameras, but "never in two places at once" only holds within each camera.
"""

import configparser
import dataclasses
import datetime
import os

from sal_tf.tracking import mot


@dataclasses.dataclass
class Camera:
    """One camera: `source` (`mot.Sequence` / `mot.Video`), wall-clock `start` (or None), `offset` (s)."""

    name: str
    source: object
    start: datetime.datetime | None
    offset: float = 0.0
    det_file: str | None = None  # a video's ROOT/<camera>.txt

    @property
    def fps(self):
        return self.source.fps

    @property
    def length(self):
        return self.source.length

    def seconds(self, frame):
        """Time of 1-based `frame` on the run's common time line (seconds)."""
        return self.offset + (frame - 1) / self.fps

    def wall_time(self, frame):
        """ISO 8601 wall-clock time of `frame`, or None when the camera has no start time."""
        if self.start is None:
            return None
        return (self.start + datetime.timedelta(seconds=(frame - 1) / self.fps)).isoformat(timespec="milliseconds")


def parse_time(text, where):
    """A naive datetime of an ISO 8601 string (an aware one is converted to UTC); errors name `where`."""
    try:
        value = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an ISO 8601 time (e.g. 2026-03-02T09:00:00.000).") from None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def parse_start_times(spec):
    """`--start_times=cam:ISO,...` → {camera: datetime} (the time holds colons: split at the first one)."""
    out = {}
    for item in (s.strip() for s in (spec or "").split(",") if s.strip()):
        camera, sep, text = item.partition(":")
        if not sep or not camera or not text:
            raise ValueError(f"--start_times: expected camera:ISO_TIME items, got {item!r}.")
        out[camera] = parse_time(text, f"--start_times {camera}")
    return out


def check_frames(sequence):
    """Raises naming the folder when `img1/` lacks frames of `seqLength` (or seqLength is missing)."""
    if sequence.length < 1:
        raise ValueError(f"{os.path.join(sequence.folder, mot.SEQINFO)}: seqLength is missing or 0.")
    if not os.path.isdir(sequence.image_dir):
        raise FileNotFoundError(f"{sequence.folder}: the frame folder {sequence.image_dir!r} does not exist.")
    present = set(os.listdir(sequence.image_dir))
    missing = [f for f in range(1, sequence.length + 1) if os.path.basename(sequence.frame_path(f)) not in present]
    if missing:
        shown = ", ".join(os.path.basename(sequence.frame_path(f)) for f in missing[:5])
        raise ValueError(
            f"{sequence.image_dir}: {len(missing)} of the {sequence.length} frames of seqLength are missing "
            f"({shown}{', ...' if len(missing) > 5 else ''}); expected every frame 000001{sequence.extension} …"
        )


def open_video(path):
    """A `mot.Video` whose first frame decodes; errors name the file."""
    import cv2

    try:
        video = mot.Video(path)
    except ValueError:
        raise ValueError(f"{path}: OpenCV cannot open this video (not a video, or a codec it lacks).") from None
    capture = cv2.VideoCapture(path)
    ok, _ = capture.read()
    capture.release()
    if not ok:
        raise ValueError(f"{path}: no frame could be decoded (a damaged or empty video).")
    return video


def _start_of_sequence(folder):
    info = configparser.ConfigParser()
    info.optionxform = str
    path = os.path.join(folder, mot.SEQINFO)
    info.read(path)
    text = info["Sequence"].get("startTime") if "Sequence" in info else None
    return parse_time(text, f"{path} startTime") if text else None


def find_cameras(root):
    """[(name, sequence folder or video path)] of `root`, sorted by name; errors name `root`."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--source {root!r} is not a folder (one sub-folder or video file per camera).")
    found = []
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if os.path.isfile(os.path.join(path, mot.SEQINFO)):
            found.append((entry, path))
        elif os.path.isfile(path) and entry.lower().endswith(mot.VIDEO_EXTENSIONS):
            found.append((os.path.splitext(entry)[0], path))
    if not found:
        raise ValueError(
            f"--source {root!r} holds no camera: expected sub-folders with {mot.SEQINFO} (MOTChallenge sequences) "
            f"or video files ({', '.join(mot.VIDEO_EXTENSIONS)})."
        )
    names = [n for n, _ in found]
    if len(set(names)) < len(names):
        raise ValueError(f"--source {root!r}: two cameras share a name ({names}).")
    return found


def open_camera(name, path, start_times):
    if os.path.isdir(path):
        source = mot.Sequence(path)
        check_frames(source)
        start, det_file = _start_of_sequence(path), None
    else:
        source, start = open_video(path), None
        det_file = os.path.splitext(path)[0] + ".txt"
        det_file = det_file if os.path.isfile(det_file) else None
    source.name = name
    return Camera(name, source, start_times.get(name, start), det_file=det_file)


def open_cameras(root, start_times=None):
    """(cameras ordered by start time then name, warnings) of `--source=ROOT` (see the module docstring)."""
    start_times = start_times or {}
    found = find_cameras(root)
    unknown = sorted(set(start_times) - {n for n, _ in found})
    if unknown:
        raise ValueError(f"--start_times names {unknown}, not cameras of {root!r} ({[n for n, _ in found]}).")
    cameras, warnings = [open_camera(name, path, start_times) for name, path in found], []
    untimed = [c.name for c in cameras if c.start is None]
    if untimed:
        warnings.append(
            f"no start time for {', '.join(untimed)} (seqinfo.ini startTime= or --start_times): cameras ordered "
            "by name and laid end to end on one time line"
        )
        clock = 0.0
        for camera in cameras:
            camera.offset, clock = clock, clock + camera.length / camera.fps
        return cameras, warnings
    first = min(c.start for c in cameras)
    for camera in cameras:
        camera.offset = (camera.start - first).total_seconds()
    return sorted(cameras, key=lambda c: (c.offset, c.name)), warnings

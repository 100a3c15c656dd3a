"""Annotated output of a tracking run: each reported box drawn with its track id, as a GIF or a video.

GIFs are written with Pillow (all frames kept until `close`, fine for short clips); `.mp4` / `.avi`
with OpenCV's `VideoWriter` (installed with deep-sort-realtime), frame by frame.
"""

import colorsys

import numpy as np

FORMATS = ("gif", "mp4", "avi")


def colour(track_id):
    """A stable, well-spread RGB colour of a track id."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, 1.0))


def draw(frame_rgb, tracks):
    """A PIL image of an RGB frame with `tracks` [(id, x1, y1, x2, y2, conf)] drawn on it."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame_rgb))
    pen = ImageDraw.Draw(image)
    for track_id, x1, y1, x2, y2, _ in tracks:
        c = colour(track_id)
        pen.rectangle([x1, y1, x2, y2], outline=c, width=2)
        label = str(track_id)
        pen.rectangle([x1, y1 - 11, x1 + 6 * len(label) + 3, y1], fill=c)
        pen.text((x1 + 2, y1 - 11), label, fill=(0, 0, 0))
    return image


class AnnotatedWriter:
    """`add(frame, tracks)` per frame, then `close()`; `channels` says the frames' order ("rgb" / "bgr")."""

    def __init__(self, path, fps, channels="rgb"):
        if not path.lower().endswith(tuple(f".{f}" for f in FORMATS)):
            raise ValueError(f"Annotated output {path!r}: expected one of {', '.join('.' + f for f in FORMATS)}.")
        self.path, self.fps, self.channels = path, float(fps), channels
        self.frames, self.video = [], None

    def add(self, frame, tracks):
        rgb = frame[..., ::-1] if self.channels == "bgr" else frame
        image = draw(rgb, tracks)
        if self.path.lower().endswith(".gif"):
            self.frames.append(image.quantize(colors=128, method=2))  # median cut, no dithering noise
            return
        import cv2

        if self.video is None:
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.lower().endswith(".mp4") else "MJPG"))
            self.video = cv2.VideoWriter(self.path, fourcc, self.fps, image.size)
        self.video.write(np.asarray(image)[..., ::-1])

    def close(self):
        if self.frames:
            duration = max(20, int(round(1000 / self.fps)))
            self.frames[0].save(self.path, save_all=True, append_images=self.frames[1:], duration=duration, loop=0)
        if self.video is not None:
            self.video.release()

"""Synthetic multi-person video in MOTChallenge layout, drawn with the demo dataset's people.

`generate_sequences(out_dir, seed)` renders scenes, each seen by several cameras; one sequence per
(scene, camera), `<out_dir>/S01-c1/`:

    img1/000001.jpg ...   frames, 320×240 by default, 15 frames/s
    gt/gt.txt             frame,id,x,y,w,h,1,1,visibility: every person with pixels in the frame
                          (box clipped to it); the same id in every camera of a scene
    det/det.txt           frame,-1,x,y,w,h,conf,-1,-1,-1: an oracle detector, the people at least
                          `MIN_VISIBILITY` visible, box edges jittered by 2 % of the height, 2 % missed
    seqinfo.ini           name, imDir, frameRate, seqLength, imWidth, imHeight, imExt

and `<out_dir>/sequences.json` (seed, scenes, cameras, identities).

People and cameras come from `sal_tf/data/demo.py` (`person_params`, `camera_params`,
`draw_person`, `blur`): each person is drawn on the demo's 128×64 grid, scaled to their height at
their depth (a ground plane: nearer is lower and larger) and composited far-to-near, so nearer
people occlude farther ones. Identities are drawn from a seeded generator of their own (never the
demo dataset's people, which come from `generate_demo_dataset`'s generator). Each camera keeps
its colour cast, brightness, gamma, contrast, blur, noise and JPEG quality for the whole sequence
and has a static background (wall texture, floor, props) and, for about half of the cameras, a
pillar in the foreground that people walk behind.

What happens (`_passes`): people walk across the view at 0.5–0.8 body heights a second, at
several depths, in both directions, so they cross and occlude each other; some stop for a while;
some walk in pairs, one half hidden by the other; some leave the view and come back 0.5–3 s later
from the side they left by. Visibility (`gt.txt`, 9th column) is the share of a person's pixels seen in the frame.
"""

import configparser
import json
import os

import numpy as np

from sal_tf.data import demo
from sal_tf.utils.files import generate_seeded_folder_once
from sal_tf.utils.visibility import MIN_VISIBILITY  # people less visible are not detected (det.txt)

VERSION = 1  # bump when the rendering changes (cached sequences are regenerated)
FRAME_SIZE = (240, 320)  # (height, width)
FPS = 15
BOX_FILL = 0.9  # person height / box height, as in the demo crops
PATCH_FOOT, PATCH_HEIGHT = 124.0, 118.0  # where a person stands on the demo's 128×64 grid
TEST_SEED, TUNING_SEED = 22, 21  # benchmarks/tracking.py: held-out sequences, tracker-settings sequences


def person_patch(person, view, phase, height):
    """RGBA float32 [h, w, 4] (0..1) of `person` `height` px tall; feet at row `PATCH_FOOT` · scale."""
    from PIL import Image

    canvas = np.full((demo.IMAGE_HEIGHT, demo.IMAGE_WIDTH, 3), np.nan, np.float32)
    demo.draw_person(canvas, person, view, demo.IMAGE_WIDTH / 2, PATCH_FOOT, PATCH_HEIGHT, phase)
    alpha = ~np.isnan(canvas[..., :1])
    rgba = np.concatenate([np.nan_to_num(canvas), alpha], -1)
    scale = height / PATCH_HEIGHT
    size = (max(1, round(demo.IMAGE_WIDTH * scale)), max(1, round(demo.IMAGE_HEIGHT * scale)))
    image = Image.fromarray(np.round(rgba * 255).astype(np.uint8), "RGBA").resize(size, Image.BILINEAR)
    return np.asarray(image, np.float32) / 255.0


class Geometry:
    """A camera's ground plane: where people walk and how tall they look there."""

    def __init__(self, rng, size=FRAME_SIZE):
        self.height, self.width = size
        self.wall = self.height * rng.uniform(0.26, 0.38)  # wall / floor boundary
        self.far = self.wall + 0.1 * self.height  # farthest feet
        self.near = 0.98 * self.height
        self.tallest = self.height * rng.uniform(0.5, 0.58)  # person height with feet at the bottom
        self.vanish = 2 * self.far - self.height  # heights halve from the bottom to `far`

    def person_height(self, foot_y):
        return self.tallest * (foot_y - self.vanish) / (self.height - self.vanish)

    def box(self, cx, foot_y):
        """Full-body box (x1, y1, x2, y2) of a person standing at (cx, foot_y), unclipped."""
        box_h = self.person_height(foot_y) / BOX_FILL
        bottom = foot_y + 0.03 * box_h
        return np.array([cx - box_h / 4, bottom - box_h, cx + box_h / 4, bottom])


def _background(cam, rng, geo):
    """Static float32 [H, W, 3] scene: textured wall, shaded floor, a few props."""
    yy, xx = np.mgrid[0 : geo.height, 0 : geo.width].astype(np.float32)
    period = cam["tex_period"] * 2
    shade = {
        "bricks": 1.0 - 0.15 * ((yy % period < 2) | ((xx + (yy // period) * period / 2) % (2 * period) < 2)),
        "panels": 1.0 - 0.12 * (xx % (4 * period) < 2 * period),
        "gradient": 0.85 + 0.3 * yy / geo.height,
        "noise": np.kron(rng.uniform(0.88, 1.08, (geo.height // 16 + 1, geo.width // 16 + 1)), np.ones((16, 16))),
    }[cam["texture"]][: geo.height, : geo.width]
    img = cam["wall"] * shade[..., None]
    props = (2, 5), lambda rng: (rng.uniform(20, 60), rng.uniform(20, 0.9 * geo.wall + 20))  # count, (w, h)
    return floor_and_props(img, yy, xx, cam, rng, geo, *props)


def floor_and_props(img, yy, xx, cam, rng, geo, count, prop_size):
    """`img` (the wall) with the floor shaded below `geo.wall` and rng.integers(*count) props (doors, posters,
    bins) against the wall, `prop_size(rng)` → (width, height) each (also `demo_cameras`' scenes)."""
    floor = yy >= geo.wall
    depth = (yy[floor] - geo.wall) / (geo.height - geo.wall)
    img[floor] = cam["floor"] * (0.8 + 0.35 * depth)[:, None]
    for _ in range(rng.integers(*count)):
        w, h = prop_size(rng)
        x0, y1 = rng.uniform(-10, geo.width - 10), geo.wall + rng.uniform(-0.4, 0.05) * h
        img[(xx >= x0) & (xx < x0 + w) & (yy >= y1 - h) & (yy < y1)] = demo.muted(rng, 0.1, 0.9, 0.5)
    return img


def foreground_pillar(rng, geo, widths=(0.1, 0.17)):
    """None, or (x0, x1, colour) of a foreground pillar (about half of the cameras), `widths` × the frame wide."""
    if rng.random() < 0.5:
        return None
    width = geo.width * rng.uniform(*widths)
    x0 = geo.width * rng.uniform(0.25, 0.75) - width / 2
    return x0, x0 + width, demo.muted(rng, 0.2, 0.7, 0.3)


def _walk(rng, geo, start, side, foot_y, end_y, speed, pause):
    """Per-frame states {frame: (cx, foot_y, view, phase)} of one pass across the view from `side`."""
    margin = 0.3 * geo.person_height(foot_y)
    x, x_end = (-margin, geo.width + margin) if side < 0 else (geo.width + margin, -margin)
    direction = np.array([x_end - x, end_y - foot_y])
    direction /= np.linalg.norm(direction)
    view, phase, states, t, y = ("right" if side < 0 else "left"), rng.uniform(0, 2 * np.pi), {}, start, foot_y
    travelled, stop_at = 0.0, None if pause is None else pause[0] * abs(x_end - x)
    while (x_end - x) * -side > 0:
        states[t] = (x, y, view, phase)
        if stop_at is not None and travelled >= stop_at:
            states.update({t + i: (x, y, view, phase) for i in range(1, pause[1] + 1)})
            t, stop_at = t + pause[1], None
        step = speed * geo.person_height(y)
        x, y = x + step * direction[0], float(np.clip(y + step * direction[1], geo.far, geo.near))
        travelled += step
        phase += 2 * np.pi * step / (0.7 * geo.person_height(y))
        t += 1
    return states, t  # t: the first frame after the person left


def _passes(rng, geo, ids, num_frames):
    """{id: {frame: state}} of one camera: crossings, pauses, pairs, exits and returns."""
    people = {}
    for pid in ids:
        side = rng.choice([-1, 1])
        start = int(rng.uniform(-0.3, 0.75) * num_frames)
        speed = rng.uniform(0.035, 0.055)
        foot_y = rng.uniform(geo.far, geo.near)
        end_y = float(np.clip(foot_y + rng.uniform(-0.15, 0.15) * geo.height, geo.far, geo.near))
        pause = (rng.uniform(0.2, 0.8), int(rng.integers(8, 30))) if rng.random() < 0.25 else None
        states, left_at = _walk(rng, geo, start, side, foot_y, end_y, speed, pause)
        if rng.random() < 0.4:  # comes back later through the side they left by
            again = float(rng.uniform(geo.far, geo.near))
            back, _ = _walk(rng, geo, left_at + int(rng.integers(8, 45)), -side, again, again, speed, None)
            states.update(back)
        people[pid] = states
    _add_pair(rng, geo, people, ids)
    return {pid: {t: s for t, s in states.items() if 0 <= t < num_frames} for pid, states in people.items()}


def _add_pair(rng, geo, people, ids):
    """Makes one person of the camera walk beside another, a little behind (half hidden), half the time."""
    if len(ids) < 2 or rng.random() < 0.5:
        return
    lead, follower = rng.choice(ids, 2, replace=False)
    offset, depth = rng.uniform(10, 25) * rng.choice([-1, 1]), rng.uniform(8, 20)
    people[follower] = {
        t: (x + offset, max(geo.far, y - depth), view, phase + 1.0) for t, (x, y, view, phase) in people[lead].items()
    }


def render_frame(background, geo, cam, rng, people, states, pillar):
    """(uint8 frame [H, W, 3], {id: (full box, visibility)}) of the people in `states` {id: state}."""
    img, owner = background.copy(), np.full(background.shape[:2], -1, np.int64)
    full_area, boxes = {}, {}
    for pid, (cx, foot_y, view, phase) in sorted(states.items(), key=lambda item: item[1][1]):  # far first
        height = geo.person_height(foot_y)
        patch = person_patch(people[pid], view, phase, height)
        scale = height / PATCH_HEIGHT
        top, left = round(foot_y - PATCH_FOOT * scale), round(cx - demo.IMAGE_WIDTH / 2 * scale)
        full_area[pid] = int((patch[..., 3] > 0.5).sum())
        _paste(img, owner, patch, top, left, pid)
        boxes[pid] = geo.box(cx, foot_y)
    if pillar is not None:
        x0, x1, colour = pillar
        img[:, int(x0) : int(x1)] = colour
        owner[:, int(x0) : int(x1)] = -1
    seen = np.bincount(owner[owner >= 0].ravel(), minlength=max(people) + 1)
    visible = {pid: (boxes[pid], seen[pid] / max(full_area[pid], 1)) for pid in boxes}
    return _finish(img, cam, rng, geo), visible


def _paste(img, owner, patch, top, left, pid):
    """Alpha-composites `patch` (RGBA) at (top, left), clipped to the frame; marks its opaque pixels as `pid`'s."""
    h, w = img.shape[:2]
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + patch.shape[0], h), min(left + patch.shape[1], w)
    if y1 <= y0 or x1 <= x0:
        return
    part = patch[y0 - top : y1 - top, x0 - left : x1 - left]
    alpha = part[..., 3:]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + part[..., :3] * alpha
    owner[y0:y1, x0:x1][alpha[..., 0] > 0.5] = pid


def _finish(img, cam, rng, geo):
    """The camera's imaging, fixed for the sequence but the sensor noise: blur, cast, gamma, contrast → uint8."""
    img = demo.blur(img, cam["blur"])
    img = np.clip(img * cam["cast"] * cam["brightness"], 0, 1) ** cam["gamma"]
    img = 0.5 + (img - 0.5) * cam["contrast"]
    img = img * (1 + cam["shading"] * (np.arange(geo.width, dtype=np.float32) / geo.width - 0.5))[None, :, None]
    img = img + rng.normal(0, cam["noise"], img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def _detect(rng, box, visibility, geo):
    """An oracle detection of a full box: None (too hidden, or missed), else (xyxy, confidence)."""
    if visibility < MIN_VISIBILITY or rng.random() < 0.02:
        return None
    jittered = box + rng.normal(0, 0.02 * (box[3] - box[1]), 4)
    jittered = np.clip(jittered, 0, [geo.width, geo.height, geo.width, geo.height])
    if jittered[2] - jittered[0] < 2 or jittered[3] - jittered[1] < 2:
        return None
    return jittered, float(np.clip(0.6 + 0.4 * visibility + rng.normal(0, 0.05), 0.05, 1.0))


def _clip(box, geo):
    return np.clip(box, 0, [geo.width, geo.height, geo.width, geo.height])


def _mot_row(frame, pid, box, *rest):
    x1, y1, x2, y2 = box
    return ",".join([str(frame), str(pid), *(f"{v:.2f}" for v in (x1, y1, x2 - x1, y2 - y1)), *map(str, rest)])


def write_seqinfo(seq_dir, name, length, size=FRAME_SIZE, fps=FPS):
    """`seqinfo.ini` of a MOTChallenge sequence."""
    info = configparser.ConfigParser()
    info.optionxform = str  # keep the keys' case (imDir, seqLength, ...)
    info["Sequence"] = dict(
        name=name,
        imDir="img1",
        frameRate=str(fps),
        seqLength=str(length),
        imWidth=str(size[1]),
        imHeight=str(size[0]),
        imExt=".jpg",
    )
    with open(os.path.join(seq_dir, "seqinfo.ini"), "w") as f:
        info.write(f, space_around_delimiters=False)


def render_sequence(seq_dir, name, people, cam, rng, num_frames, size=FRAME_SIZE, progress=None):
    """Renders one camera's sequence into `seq_dir` (MOTChallenge layout); `people`: {id: person params}."""
    geo = Geometry(rng, size)
    background, pillar = _background(cam, rng, geo), foreground_pillar(rng, geo)
    tracks = _passes(rng, geo, sorted(people), num_frames)
    write_frames(seq_dir, (background, pillar, geo, cam), rng, people, tracks, num_frames, _frame_rows, progress)
    write_seqinfo(seq_dir, name, num_frames, size)


def _frame_rows(rng, geo, t, visible):
    """(gt rows, det rows) of frame t (0-based): `visible` {id: (box, visibility)}."""
    gt, det = [], []
    for pid, (box, visibility) in sorted(visible.items()):
        clipped = _clip(box, geo)
        if visibility > 0 and clipped[2] > clipped[0] and clipped[3] > clipped[1]:
            gt.append(_mot_row(t + 1, pid, clipped, 1, 1, f"{min(visibility, 1.0):.3f}"))
        found = _detect(rng, box, visibility, geo)
        if found is not None:
            det.append(_mot_row(t + 1, -1, found[0], f"{found[1]:.3f}", -1, -1, -1))
    return gt, det


def write_frames(seq_dir, scene, rng, people, tracks, num_frames, frame_rows, progress=None):
    """Renders `num_frames` frames of `tracks` ({id: {frame: state}}) in `scene` (background, pillar, geometry,
    camera look) into `seq_dir`/img1, with gt/gt.txt and det/det.txt from `frame_rows(rng, geo, t, visible)` →
    (gt rows, det rows) after each frame (also `demo_cameras.render_camera`)."""
    from PIL import Image

    background, pillar, geo, cam = scene
    for sub in ("img1", "gt", "det"):
        os.makedirs(os.path.join(seq_dir, sub), exist_ok=True)
    gt, det = [], []
    for t in range(num_frames):
        states = {pid: s[t] for pid, s in tracks.items() if t in s}
        frame, visible = render_frame(background, geo, cam, rng, people, states, pillar)
        Image.fromarray(frame).save(os.path.join(seq_dir, "img1", f"{t + 1:06d}.jpg"), quality=cam["quality"])
        rows = frame_rows(rng, geo, t, visible)
        gt, det = gt + rows[0], det + rows[1]
        if progress is not None:
            progress.update(progress.step + 1)
    for path, rows in (("gt/gt.txt", gt), ("det/det.txt", det)):
        with open(os.path.join(seq_dir, path), "w") as f:
            f.write("\n".join(rows) + "\n")


def _camera(rng):
    cam = demo.camera_params(rng)
    cam["shading"] = rng.uniform(-0.12, 0.12)  # a fixed light direction for the whole sequence
    return cam


def generate_sequences(
    out_dir, seed=TEST_SEED, scenes=2, cameras=3, frames=240, people=8, size=FRAME_SIZE, verbose=True
):
    """Writes `scenes × cameras` sequences into `out_dir` (see the module docstring); returns their folders.

    Args:
        seed: generator seed (same seed → the same sequences).
        scenes: groups of people; cameras: views of each scene (each shows 6 or more of its people).
        frames: frames per sequence; people: identities per scene (ids 100·scene + 1 ...).
    """
    from sal_tf.utils.progress import Progress

    if min(scenes, cameras, frames, people) < 1:
        raise ValueError(
            f"scenes, cameras, frames and people must be >= 1; got {scenes}, {cameras}, {frames}, {people}."
        )
    os.makedirs(out_dir, exist_ok=True)
    progress = Progress(scenes * cameras * frames, "Rendering sequences", verbose, unit="frame", log_every=30)
    index, folders = {"seed": seed, "fps": FPS, "frame_size": list(size), "min_visibility": MIN_VISIBILITY}, []
    for s in range(1, scenes + 1):
        rng = np.random.default_rng([seed, s, 2207])  # never the demo dataset's generator
        cast = {100 * s + i: demo.person_params(rng) for i in range(1, people + 1)}
        for c in range(1, cameras + 1):
            shown = rng.choice(sorted(cast), max(1, min(people, int(rng.integers(6, 9)))), replace=False)
            name = f"S{s:02d}-c{c}"
            render_sequence(
                os.path.join(out_dir, name),
                name,
                {int(p): cast[int(p)] for p in shown},
                _camera(rng),
                rng,
                frames,
                size,
                progress,
            )
            folders.append(os.path.join(out_dir, name))
            index.setdefault("sequences", {})[name] = sorted(int(p) for p in shown)
    progress.finish()
    with open(os.path.join(out_dir, "sequences.json"), "w") as f:
        json.dump(index, f, indent=2)
    return folders


def ensure_sequences(cache_dir, seed=TEST_SEED, **kwargs):
    """The sequences of `seed` under `cache_dir` (`demo_sequences_v<VERSION>_seed<seed>`), rendered on first use
    (`sal_tf.utils.files.generate_seeded_folder_once`); `kwargs`: `generate_sequences`'s, named in the folder."""
    return generate_seeded_folder_once(cache_dir, f"demo_sequences_v{VERSION}", generate_sequences, seed, kwargs)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string(
        "out", None, "Output folder (one MOTChallenge sequence folder per scene and camera).", required=True
    )
    flags.DEFINE_integer("seed", TEST_SEED, "Generator seed (same seed → the same sequences).")
    flags.DEFINE_integer("scenes", 2, "Scenes (groups of people).")
    flags.DEFINE_integer("cameras", 3, "Cameras per scene.")
    flags.DEFINE_integer("frames", 240, "Frames per sequence.")
    flags.DEFINE_integer("people", 8, "Identities per scene.")
    f = flags.FLAGS
    app.run(lambda argv: generate_sequences(f.out, f.seed, f.scenes, f.cameras, f.frames, f.people))

"""Generated multi-camera video: the same people walk through cameras c1 → c2 → … in order.

`generate_cameras(out_dir, seed)` writes one MOTChallenge sequence folder per camera (`<out_dir>/c1/`
…), laid out as `sal_tf/data/demo_sequences.py` writes them (`img1/`, `gt/gt.txt` with the person's
id — **the same id in every camera** —, `det/det.txt`, `seqinfo.ini`) plus a `startTime=` line in
`seqinfo.ini` (ISO 8601, the wall-clock time of frame 1; the cameras start a few seconds apart),
and `<out_dir>/cameras.json` (seed, cameras, start times, the true transit windows, the people).

Each person (drawn with `sal_tf.data.demo`'s `person_params` / `draw_person`, from a generator of
its own: never the demo dataset's people) enters camera 1 at a random time, walks through it, takes
2–6 s to reach the next camera, and so on; the recordings are finite, so people seen late in
camera 1 may leave camera 4's recording unseen. Within a camera people cross at several depths
(nearer people occlude farther ones), some pause, one in eight walks beside a friend the whole way, and about a third leave the
view and **come back** 1–4 s later from the side they left by, before going on.

What changes between cameras (so that a match across them is a re-identification, not a copy):

* **white balance**: each camera's colour temperature is spread over warm ↔ cool (red / blue gains
  1 ± up to 0.22, a green–magenta tint ± 0.05): the hue of a grey or pale garment moves by tens
  of degrees between cameras, as between a tungsten-lit corridor and a daylight entrance;
* **light** (brightness 0.65–1.15, gamma, contrast, a light direction), blur, noise, JPEG quality;
* **scale**: the camera's height above the floor and its lens (people 0.6–1.1× the default size);
* **view**: people walk *across* the view (side views), *toward* it (front: logos, bag straps,
  faces) or *away* from it (back: backpacks, hair) — the walking direction of the camera;
* background (wall texture, floor, props) and, in about half of them, a foreground pillar.

And, so that colour alone does not identify people (as in real crowds): about half of the people
share their upper and lower garments' colours with someone else of the scene (they differ in
pattern — stripes, checks, logo, two-tone —, sleeves, bag, hair, hat, build), and clothes are
drawn from the demo's palette where dark and neutral colours are the most common.

`det/det.txt` is a simulated detector: people at least `MIN_VISIBILITY` visible, box edges jittered
by 2.5 % of the height, 3 % missed, and now and then a false box on the background.
"""

import configparser
import datetime
import json
import os

import numpy as np

from sal_tf.data import demo
from sal_tf.data.demo_sequences import Geometry, floor_and_props, foreground_pillar, write_frames, write_seqinfo
from sal_tf.utils.files import generate_seeded_folder_once
from sal_tf.utils.visibility import MIN_VISIBILITY

VERSION = 2  # bump when the rendering changes (cached cameras are regenerated)
FRAME_SIZE = (360, 640)  # (height, width)
FPS = 10
TEST_SEED, TUNING_SEED = 42, 41  # benchmarks/mtmc.py: held-out cameras, settings cameras
START_TIME = datetime.datetime(2026, 3, 2, 9, 0, 0)  # wall-clock time of camera 1's first frame
WALKS = ("across", "toward", "away")
TRANSIT_SECONDS = (2.0, 6.0)  # walking time from one camera's view to the next one's
SHARED_COLOURS = 0.5  # share of the people who wear another person's garment colours
FALSE_BOX_RATE = 0.01  # false detections per frame


def camera_looks(rng, count):
    """`count` camera dicts (`demo.camera_params` keys + shading, walk, zoom): white balance spread warm ↔ cool."""
    warmth = rng.permutation(np.linspace(-1.0, 1.0, count)) if count > 1 else np.zeros(1)
    walks = [WALKS[i % len(WALKS)] for i in rng.permutation(max(count, len(WALKS)))][:count]
    looks = []
    for k in range(count):
        cam = demo.camera_params(rng)
        gain, tint = 0.22 * warmth[k] + rng.normal(0, 0.03), rng.uniform(-0.05, 0.05)
        cam.update(
            cast=np.array([1 + gain, 1 + tint, 1 - gain], np.float32),
            brightness=rng.uniform(0.65, 1.15),
            shading=rng.uniform(-0.15, 0.15),
            walk=walks[k],
            zoom=rng.uniform(0.6, 1.1),
        )
        looks.append(cam)
    return looks


def scene_people(rng, count, first_id=1):
    """{id: person params}: `SHARED_COLOURS` of them wear the upper / lower colours of an earlier one."""
    people = {}
    for pid in range(first_id, first_id + count):
        person = demo.person_params(rng)
        if people and rng.random() < SHARED_COLOURS:
            twin = people[int(rng.choice(sorted(people)))]
            person.update(upper=twin["upper"].copy(), lower=twin["lower"].copy())
            if np.abs(person["second"] - person["upper"]).sum() < 0.45:  # the pattern must stay visible
                person["second"] = twin["second"].copy() if twin["pattern"] != "plain" else 1.0 - person["upper"]
        people[pid] = person
    return people


def _background(cam, rng, geo):
    """Static float32 [H, W, 3] scene: a textured wall, a shaded floor, a few props."""
    yy, xx = np.mgrid[0 : geo.height, 0 : geo.width].astype(np.float32)
    period = cam["tex_period"] * geo.height / 120
    shade = {
        "bricks": 1.0 - 0.14 * ((yy % period < 2) | ((xx + (yy // period) * period / 2) % (2 * period) < 2)),
        "panels": 1.0 - 0.1 * (xx % (4 * period) < 2 * period),
        "gradient": 0.85 + 0.3 * yy / geo.height,
        "noise": 0.9 + 0.2 * ((xx // 24 + yy // 24) % 2),
    }[cam["texture"]]
    img = cam["wall"] * shade[..., None]
    props = (3, 7), lambda rng: (geo.width * rng.uniform(0.04, 0.15), rng.uniform(0.2, 1.0) * geo.wall + 10)
    return floor_and_props(img, yy, xx, cam, rng, geo, *props)  # doors, posters, benches


def _geometry(rng, cam, size):
    geo = Geometry(rng, size)
    geo.tallest *= cam["zoom"]
    return geo


def _across(rng, geo, start, speed, side=None):
    """{frame: (cx, foot_y, view, phase)} of a walk across the view; returns (states, side, first frame after)."""
    side = rng.choice([-1, 1]) if side is None else side
    y = float(rng.uniform(geo.far, geo.near))
    end_y = float(np.clip(y + rng.uniform(-0.12, 0.12) * geo.height, geo.far, geo.near))
    margin = 0.3 * geo.person_height(y)
    x, x_end = (-margin, geo.width + margin) if side < 0 else (geo.width + margin, -margin)
    direction = np.array([x_end - x, end_y - y]) / np.hypot(x_end - x, end_y - y)
    view, phase, states, t = ("right" if side < 0 else "left"), rng.uniform(0, 2 * np.pi), {}, start
    pause_at = rng.uniform(0.2, 0.8) * geo.width if rng.random() < 0.2 else None
    while (x_end - x) * -side > 0:
        states[t] = (x, y, view, phase)
        if pause_at is not None and abs(x - (-margin if side < 0 else geo.width + margin)) >= pause_at:
            states.update({t + i: (x, y, view, phase) for i in range(1, int(rng.integers(5, 20)))})
            t, pause_at = max(states) + 1, None
            continue
        step = speed * geo.person_height(y)
        x, y = x + step * direction[0], float(np.clip(y + step * direction[1], geo.far, geo.near))
        phase += 2 * np.pi * step / (0.7 * geo.person_height(y))
        t += 1
    return states, side, t


def _depthwise(rng, geo, start, speed, toward):
    """A walk toward the camera (front view, from a far door out through the bottom) or away from it (back view)."""
    cx, drift = geo.width * rng.uniform(0.15, 0.85), rng.uniform(-0.4, 0.4)
    y_far, y_near = geo.far + 2.0, geo.height + 0.25 * geo.person_height(geo.height)
    y = y_far if toward else y_near
    phase, states, t = rng.uniform(0, 2 * np.pi), {}, start
    while (y < y_near) if toward else (y > y_far):
        states[t] = (cx, y, "front" if toward else "back", phase)
        step = speed * geo.person_height(y)
        y += (0.35 if toward else -0.35) * step
        cx = float(np.clip(cx + drift * step, 0, geo.width))
        phase += 2 * np.pi * step / (0.7 * geo.person_height(y))
        t += 1
    return states, t


def camera_visits(rng, geo, walk, arrival, speed):
    """{frame: state} of one person's visit to a camera from `arrival` (a frame), and the frame they leave it."""
    if walk != "across":
        states, left = _depthwise(rng, geo, arrival, speed, walk == "toward")
        if rng.random() < 0.3:  # turns back: comes out again the way they went, then leaves for good
            back, left = _depthwise(rng, geo, left + int(rng.integers(10, 40)), speed, walk != "toward")
            states.update(back)
        return states, left
    states, side, left = _across(rng, geo, arrival, speed)
    if rng.random() < 0.35:  # leaves, comes back through the side they left by, leaves again
        back, _, left = _across(rng, geo, left + int(rng.integers(10, 40)), speed, -side)
        states.update(back)
    return states, left


def _walk_together(rng, tracks, geos, lead, follower):
    """`follower` walks beside `lead` through every camera, a little behind (half hidden): a pair of friends."""
    offset, depth = rng.uniform(0.03, 0.06) * rng.choice([-1, 1]), rng.uniform(8, 20)
    for k, geo in enumerate(geos):
        tracks[k].pop(follower, None)
        if lead in tracks[k]:
            tracks[k][follower] = {
                t: (x + offset * geo.width, max(geo.far, y - depth), v, ph + 1.0)
                for t, (x, y, v, ph) in tracks[k][lead].items()
            }


def _detect(rng, box, visibility, geo):
    """A simulated detection of a full box: None (too hidden, or missed), else (xyxy, confidence)."""
    if visibility < MIN_VISIBILITY or rng.random() < 0.03:
        return None
    jittered = np.clip(box + rng.normal(0, 0.025 * (box[3] - box[1]), 4), 0, [geo.width, geo.height] * 2)
    if jittered[2] - jittered[0] < 2 or jittered[3] - jittered[1] < 2:
        return None
    return jittered, float(np.clip(0.6 + 0.4 * visibility + rng.normal(0, 0.05), 0.05, 1.0))


def _false_box(rng, geo):
    h = geo.person_height(rng.uniform(geo.far, geo.near)) / 0.9
    x, y = rng.uniform(0, geo.width - h / 2), rng.uniform(geo.wall - 0.5 * h, geo.height - h)
    return np.array([x, y, x + h / 2, y + h]), float(rng.uniform(0.3, 0.6))


def _row(frame, pid, box, *rest):
    x1, y1, x2, y2 = box
    return ",".join([str(frame), str(pid), *(f"{v:.2f}" for v in (x1, y1, x2 - x1, y2 - y1)), *map(str, rest)])


def _frame_rows(rng, geo, t, visible):
    """gt.txt and det.txt lines of one frame's {id: (full box, visibility)}."""
    gt, det = [], []
    for pid, (box, visibility) in sorted(visible.items()):
        clipped = np.clip(box, 0, [geo.width, geo.height] * 2)
        if visibility > 0 and clipped[2] > clipped[0] and clipped[3] > clipped[1]:
            gt.append(_row(t + 1, pid, clipped, 1, 1, f"{min(visibility, 1.0):.3f}"))
        found = _detect(rng, box, visibility, geo)
        if found is not None:
            det.append(_row(t + 1, -1, found[0], f"{found[1]:.3f}", -1, -1, -1))
    if rng.random() < FALSE_BOX_RATE:
        box, conf = _false_box(rng, geo)
        det.append(_row(t + 1, -1, box, f"{conf:.3f}", -1, -1, -1))
    return gt, det


def render_camera(seq_dir, name, people, tracks, cam, geo, rng, num_frames, start_time, progress=None):
    """Renders one camera (`tracks`: {id: {frame: state}}) into `seq_dir` (MOTChallenge layout + startTime)."""
    background, pillar = _background(cam, rng, geo), foreground_pillar(rng, geo, widths=(0.05, 0.09))
    write_frames(seq_dir, (background, pillar, geo, cam), rng, people, tracks, num_frames, _frame_rows, progress)
    write_seqinfo(seq_dir, name, num_frames, (geo.height, geo.width), FPS)
    add_start_time(seq_dir, start_time)


def add_start_time(seq_dir, start_time):
    """Adds `startTime=<ISO 8601>` to a sequence's seqinfo.ini (the wall-clock time of frame 1)."""
    path = os.path.join(seq_dir, "seqinfo.ini")
    info = configparser.ConfigParser()
    info.optionxform = str
    info.read(path)
    info["Sequence"]["startTime"] = start_time.isoformat(timespec="milliseconds")
    with open(path, "w") as f:
        info.write(f, space_around_delimiters=False)


def plan_walks(rng, geos, looks, num_people, offsets, frames):
    """{camera index: {id: {frame: state}}}: everyone walks through the cameras in order (frames of each camera)."""
    tracks = {k: {} for k in range(len(looks))}
    span = frames / FPS  # seconds each camera records
    for pid in range(1, num_people + 1):
        speed = rng.uniform(0.05, 0.08)  # body heights per frame at 10 frames/s: 0.5–0.8 per second
        clock = rng.uniform(-0.15, 0.3) * span  # seconds after camera 1's first frame
        for k, (geo, cam) in enumerate(zip(geos, looks)):
            arrival = int(round((clock - offsets[k]) * FPS))
            states, left = camera_visits(rng, geo, cam["walk"], arrival, speed)
            kept = {t: s for t, s in states.items() if 0 <= t < frames}
            if kept:
                tracks[k][pid] = kept
            clock = offsets[k] + left / FPS + rng.uniform(*TRANSIT_SECONDS)
    for _ in range(num_people // 8):  # pairs of friends, walking together the whole way
        lead, follower = (int(p) for p in rng.choice(np.arange(1, num_people + 1), 2, replace=False))
        _walk_together(rng, tracks, geos, lead, follower)
    return tracks


def generate_cameras(out_dir, seed=TEST_SEED, cameras=4, frames=600, people=16, size=FRAME_SIZE, verbose=True):
    """Writes `cameras` sequences `c1` … into `out_dir` (see the module docstring); returns their folders.

    Args:
        seed: generator seed (same seed → the same files).
        cameras: cameras walked through in order; frames: frames per camera (at `FPS`).
        people: identities (ids 1 … people); size: (height, width) of the frames.
    """
    from sal_tf.utils.progress import Progress

    if min(cameras, frames, people) < 1:
        raise ValueError(f"cameras, frames and people must be >= 1; got {cameras}, {frames}, {people}.")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng([seed, 4242])  # never the demo dataset's generator
    cast, looks = scene_people(rng, people), camera_looks(rng, cameras)
    geos = [_geometry(rng, cam, size) for cam in looks]
    offsets = np.concatenate([[0.0], np.cumsum(rng.uniform(1.0, 4.0, cameras - 1))])  # recordings start apart
    tracks = plan_walks(rng, geos, looks, people, offsets, frames)
    progress = Progress(cameras * frames, "Rendering cameras", verbose, unit="frame", log_every=50)
    index = {"seed": seed, "fps": FPS, "frame_size": list(size), "min_visibility": MIN_VISIBILITY, "cameras": {}}
    folders = []
    for k in range(cameras):
        name, start = f"c{k + 1}", START_TIME + datetime.timedelta(seconds=float(offsets[k]))
        folder = os.path.join(out_dir, name)
        render_camera(folder, name, cast, tracks[k], looks[k], geos[k], rng, frames, start, progress)
        index["cameras"][name] = {
            "start_time": start.isoformat(timespec="milliseconds"),
            "walk": looks[k]["walk"],
            "white_balance": [round(float(g), 3) for g in looks[k]["cast"]],
            "people": sorted(int(p) for p in tracks[k]),
        }
        folders.append(folder)
    progress.finish()
    index["transit_seconds"] = list(TRANSIT_SECONDS)
    with open(os.path.join(out_dir, "cameras.json"), "w") as f:
        json.dump(index, f, indent=2)
    return folders


def ensure_cameras(cache_dir, seed=TEST_SEED, **kwargs):
    """The cameras of `seed` under `cache_dir` (`demo_cameras_v<VERSION>_seed<seed>…`), rendered on first use
    (`sal_tf.utils.files.generate_seeded_folder_once`)."""
    return generate_seeded_folder_once(cache_dir, f"demo_cameras_v{VERSION}", generate_cameras, seed, kwargs)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("out", None, "Output folder (one MOTChallenge sequence folder per camera).", required=True)
    flags.DEFINE_integer("seed", TEST_SEED, "Generator seed (same seed → the same cameras).")
    flags.DEFINE_integer("cameras", 4, "Cameras the people walk through in order.")
    flags.DEFINE_integer("frames", 600, "Frames per camera (10 frames/s).")
    flags.DEFINE_integer("people", 16, "Identities.")
    f = flags.FLAGS

    def main(argv):
        del argv
        generate_cameras(f.out, f.seed, f.cameras, f.frames, f.people)  # returns nothing: exit status 0

    app.run(main)

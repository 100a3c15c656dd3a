"""Synthetic demo dataset in the exact Market-1501 layout: the project's embedded default.

`generate_demo_dataset(out_dir)` writes `bounding_box_train/`, `query/` and `bounding_box_test/`
with Market names (`0002_c1s1_000451_01.jpg`, distractors `0000_…`, junk `-1_…`) as 128×64 JPEGs,
drawn with numpy and encoded with `tf.io.encode_jpeg`. Same seed → byte-identical files.
Default size (seed 0): 150 train ids / 1,786 images; 150 test ids with 446 queries and a
1,647-image gallery (incl. 200 distractors, 150 junk); ~3,900 images.

Design (what makes it learnable but not trivial):

* Identity = a parametric person whose cues survive a 64×32 resize: upper-garment colour and
  pattern (plain, horizontal/vertical stripes, checks, two-tone, chest logo), sleeve length,
  lower garment (trousers, shorts, skirt) and its colour, shoes, hair colour/length, an optional
  hat, a bag (backpack, handbag, shoulder bag) with its colour and side, and build (height,
  width). Colours come from a skewed palette (dark/neutral clothes are common) plus a small
  per-id offset, so single cues collide between ids and only their combination identifies.
* Cameras (6) differ in colour cast, brightness, gamma, contrast, background (wall/floor
  colours and texture, horizon), person scale and foot position, blur, noise and JPEG quality.
* Each (id, camera) is a short tracklet: a view (front, back, side left/right, which changes
  what the bag/logo/hair look like), then a few frames with walking phase, position, scale,
  brightness and clutter jitter; ~8 % of frames have a passer-by half in the frame.
* Test ids: one query per camera (at least one per id), the rest of the frames in the gallery,
  so each query has cross-camera matches. The gallery also holds distractors (pid 0: background
  or a stranger badly framed) and junk (pid -1: fragments of test ids), as Market does.

Raw pixels are therefore a weak feature (different camera, view and background for every true
match) while a network that learns to look at the person's clothes separates the ids (BUILD.md
"The demo dataset" gives the measured baselines).

`ensure_demo_dataset(cache_dir)` generates once into a temporary folder and renames it, so an
interrupted generation never looks complete. CLI: `python -m sal_tf.data.demo --out DIR`.
"""

import os

import numpy as np

from sal_tf.utils.files import generate_folder_once

IMAGE_HEIGHT, IMAGE_WIDTH = 128, 64
NUM_CAMERAS = 6
# Bump when the drawing changes, so cached demo datasets are regenerated.
VERSION = 1

# (name, sRGB 0..1, weight): dark and neutral clothes are the most common, as in the street.
PALETTE = (
    ("black", (0.08, 0.08, 0.09), 3.0),
    ("charcoal", (0.25, 0.25, 0.27), 2.0),
    ("gray", (0.50, 0.50, 0.50), 2.0),
    ("white", (0.90, 0.90, 0.88), 2.0),
    ("navy", (0.10, 0.14, 0.35), 2.0),
    ("blue", (0.15, 0.35, 0.75), 1.5),
    ("lightblue", (0.55, 0.70, 0.90), 1.5),
    ("denim", (0.25, 0.35, 0.55), 2.0),
    ("red", (0.80, 0.12, 0.12), 1.5),
    ("maroon", (0.45, 0.08, 0.12), 1.0),
    ("green", (0.15, 0.55, 0.25), 1.0),
    ("olive", (0.40, 0.42, 0.18), 1.0),
    ("yellow", (0.92, 0.82, 0.20), 1.0),
    ("orange", (0.95, 0.50, 0.12), 0.8),
    ("pink", (0.95, 0.60, 0.70), 1.0),
    ("purple", (0.45, 0.22, 0.60), 0.8),
    ("brown", (0.42, 0.27, 0.15), 1.5),
    ("beige", (0.80, 0.72, 0.55), 2.0),
)
_PALETTE_RGB = np.array([c for _, c, _ in PALETTE], np.float32)
_PALETTE_P = np.array([w for _, _, w in PALETTE], np.float64) / sum(w for _, _, w in PALETTE)
SKIN = np.array([(0.96, 0.80, 0.69), (0.87, 0.67, 0.52), (0.70, 0.50, 0.36), (0.45, 0.30, 0.20)], np.float32)
HAIR = np.array([(0.06, 0.05, 0.05), (0.28, 0.18, 0.10), (0.75, 0.62, 0.35), (0.55, 0.55, 0.55)], np.float32)
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "twotone", "logo")
BAGS = ("none", "backpack", "handbag", "shoulder")
LOWERS = ("trousers", "shorts", "skirt")
VIEWS = ("front", "back", "left", "right")

_YY, _XX = np.mgrid[0:IMAGE_HEIGHT, 0:IMAGE_WIDTH].astype(np.float32)


def _colour(rng, jitter=0.06):
    c = _PALETTE_RGB[rng.choice(len(PALETTE), p=_PALETTE_P)]
    return np.clip(c + rng.normal(0, jitter, 3), 0, 1).astype(np.float32)


def _person_params(rng):
    """Appearance of one identity (all cues fixed across cameras)."""
    upper = _colour(rng)
    second = _colour(rng)
    while np.abs(second - upper).sum() < 0.45:  # a pattern must be visible
        second = _colour(rng)
    return dict(
        height=rng.uniform(0.86, 1.0),
        build=rng.uniform(0.9, 1.3),
        skin=SKIN[rng.integers(len(SKIN))],
        hair=HAIR[rng.integers(len(HAIR))],
        long_hair=rng.random() < 0.3,
        hat=_colour(rng) if rng.random() < 0.12 else None,
        upper=upper,
        second=second,
        pattern=PATTERNS[rng.choice(6, p=[0.4, 0.15, 0.1, 0.1, 0.12, 0.13])],
        period=rng.uniform(0.07, 0.12),
        short_sleeves=rng.random() < 0.35,
        lower=_colour(rng),
        lower_kind=LOWERS[rng.choice(3, p=[0.7, 0.15, 0.15])],
        shoes=_colour(rng),
        bag=BAGS[rng.choice(4, p=[0.4, 0.25, 0.15, 0.2])],
        bag_colour=_colour(rng),
        bag_side=1 if rng.random() < 0.5 else -1,
    )


def _muted(rng, low, high, saturation=0.15):
    """A desaturated background colour (real backgrounds are mostly grey-ish)."""
    grey = rng.uniform(low, high)
    return np.clip(grey + saturation * (rng.uniform(low, high, 3) - grey), 0, 1).astype(np.float32)


def _camera_params(rng):
    """Imaging conditions of one camera."""

    def texture():
        return ("bricks", "panels", "gradient", "noise")[rng.integers(4)]

    return dict(
        cast=np.clip(1 + rng.normal(0, 0.06, 3), 0.88, 1.12).astype(np.float32),
        brightness=rng.uniform(0.8, 1.12),
        gamma=rng.uniform(0.88, 1.15),
        contrast=rng.uniform(0.8, 1.05),
        wall=_muted(rng, 0.35, 0.7),
        floor=_muted(rng, 0.3, 0.6),
        texture=texture(),
        tex_period=rng.uniform(6, 16),
        horizon=rng.uniform(0.55, 0.8),
        scale=rng.uniform(0.84, 0.95),
        foot_margin=rng.uniform(1, 8),
        blur=rng.uniform(0.3, 1.4),
        noise=rng.uniform(0.01, 0.035),
        quality=int(rng.integers(70, 95)),
    )


# --- drawing primitives (masks on the 128×64 grid) ---


def _ellipse(cy, cx, ry, rx):
    return ((_YY - cy) / max(ry, 0.5)) ** 2 + ((_XX - cx) / max(rx, 0.5)) ** 2 <= 1.0


def _rect(y0, y1, x0, x1):
    return (_YY >= y0) & (_YY < y1) & (_XX >= x0) & (_XX < x1)


def _segment(y0, x0, y1, x1, half_width):
    """Thick line segment (a limb)."""
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((_YY - y0) * dy + (_XX - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0, 1)
    return (_YY - y0 - t * dy) ** 2 + (_XX - x0 - t * dx) ** 2 <= half_width**2


def _trapezoid(y0, y1, cx, half_top, half_bottom):
    t = np.clip((_YY - y0) / max(y1 - y0, 1e-6), 0, 1)
    half = half_top + t * (half_bottom - half_top)
    return (_YY >= y0) & (_YY < y1) & (np.abs(_XX - cx) <= half)


def _background(cam, rng):
    """Camera background: wall texture above the horizon, floor below, random clutter."""
    img = np.empty((IMAGE_HEIGHT, IMAGE_WIDTH, 3), np.float32)
    horizon = cam["horizon"] * IMAGE_HEIGHT + rng.normal(0, 3)
    wall = np.clip(cam["wall"] + rng.normal(0, 0.04, 3), 0, 1)
    floor = np.clip(cam["floor"] + rng.normal(0, 0.04, 3), 0, 1)
    period, phase = cam["tex_period"], rng.uniform(0, 100)
    if cam["texture"] == "bricks":
        row = np.floor((_YY + phase) / period)
        tex = (np.mod(_YY + phase, period) < 1.5) | (np.mod(_XX + phase + row * period, 2 * period) < 1.5)
        shade = 1.0 - 0.15 * tex
    elif cam["texture"] == "panels":
        shade = 1.0 - 0.12 * (np.mod(_XX + phase, 2 * period) < period)
    elif cam["texture"] == "gradient":
        shade = 0.85 + 0.3 * (_YY / IMAGE_HEIGHT) * (0.5 + 0.5 * np.sin(phase))
    else:
        coarse = rng.uniform(0.88, 1.08, (IMAGE_HEIGHT // 8 + 1, IMAGE_WIDTH // 8 + 1))
        shade = np.kron(coarse, np.ones((8, 8)))[:IMAGE_HEIGHT, :IMAGE_WIDTH]
    below = _YY >= horizon
    img[:] = wall * shade[..., None]
    img[below] = floor * (0.85 + 0.3 * (_YY[below] - horizon)[:, None] / IMAGE_HEIGHT)
    for _ in range(rng.integers(0, 2)):  # poles, signs, bins
        h, w = rng.uniform(10, 60), rng.uniform(3, 12)
        y0, x0 = rng.uniform(0, IMAGE_HEIGHT - h), rng.uniform(-w / 2, IMAGE_WIDTH - w / 2)
        img[_rect(y0, y0 + h, x0, x0 + w)] = _muted(rng, 0.1, 0.9, 0.6)
    return img


def _draw_person(img, p, view, cx, foot_y, height, phase):
    """Paints person `p` seen from `view`, feet at `foot_y`, `height` pixels tall.

    One function, long on purpose: the parts are painted back to front (back bag, legs, torso,
    front bags, head) over one shared body geometry, and splitting it would pass a dozen
    measurements between the pieces. Any change alters every demo image (and the demo's numbers).
    """
    u, b = height * p["height"], p["build"]
    top = foot_y - u
    side = view in ("left", "right")
    facing = -1 if view == "left" else 1
    width_scale = 0.7 if side else 1.0
    sh_y, hip_y, knee_y = top + 0.16 * u, top + 0.52 * u, top + 0.75 * u
    sh_half, hip_half = 0.13 * u * b * width_scale, 0.11 * u * b * width_scale
    arm_half, leg_half = 0.045 * u * b, 0.06 * u * b

    # Backpack behind the body when seen from the back or the side.
    if p["bag"] == "backpack" and view != "front":
        bx = cx - facing * (hip_half + 0.05 * u) if side else cx
        bw = 0.09 * u if side else 0.8 * sh_half
        img[_rect(sh_y + 0.02 * u, top + 0.45 * u, bx - bw, bx + bw)] = p["bag_colour"]
    # Legs and lower garment.
    stride = 0.09 * u * np.sin(phase)
    leg_x = [(cx - 0.5 * hip_half, cx - 0.5 * hip_half - stride), (cx + 0.5 * hip_half, cx + 0.5 * hip_half + stride)]
    if side:
        leg_x = [(cx, cx - stride), (cx, cx + stride)]
    for hx, fx in leg_x:
        leg = _segment(hip_y, hx, foot_y - 0.03 * u, fx, leg_half)
        if p["lower_kind"] == "trousers":
            img[leg] = p["lower"]
        else:
            img[leg] = p["skin"]
            if p["lower_kind"] == "shorts":
                img[leg & (_YY < knee_y - 0.04 * u)] = p["lower"]
        img[_ellipse(foot_y - 0.02 * u, fx + facing * 0.02 * u * side, 0.025 * u, 0.05 * u)] = p["shoes"]
    if p["lower_kind"] == "skirt":
        img[_trapezoid(hip_y - 0.02 * u, knee_y, cx, hip_half, hip_half * 1.6)] = p["lower"]
    # Torso, arms, upper-garment pattern.
    torso = _trapezoid(sh_y, hip_y + 0.02 * u, cx, sh_half, hip_half)
    swing = 0.06 * u * np.sin(phase + np.pi)
    arm_tops = [cx] if side else [cx - sh_half, cx + sh_half]
    sleeve = np.zeros_like(torso)
    for i, ax in enumerate(arm_tops):
        hand_x = ax + (swing if side else (-1 if i == 0 else 1) * 0.02 * u)
        arm = _segment(sh_y + 0.02 * u, ax, top + 0.5 * u, hand_x, arm_half)
        img[arm] = p["skin"]
        sleeve_end = top + (0.3 if p["short_sleeves"] else 0.48) * u
        sleeve |= arm & (_YY < sleeve_end)
    cloth = torso | sleeve
    img[cloth] = p["upper"]
    period = p["period"] * u
    if p["pattern"] == "hstripes":
        img[cloth & (np.mod(_YY - sh_y, period) < period / 2)] = p["second"]
    elif p["pattern"] == "vstripes":
        img[torso & (np.mod(_XX - cx, period) < period / 2)] = p["second"]
    elif p["pattern"] == "checks":
        img[torso & ((np.mod(_YY - sh_y, period) < period / 2) ^ (np.mod(_XX - cx, period) < period / 2))] = p["second"]
    elif p["pattern"] == "twotone":
        img[torso & (_YY > (sh_y + hip_y) / 2)] = p["second"]
        img[sleeve] = p["second"]
    elif p["pattern"] == "logo" and view == "front":
        img[_rect(sh_y + 0.06 * u, sh_y + 0.18 * u, cx - 0.5 * sh_half, cx + 0.5 * sh_half)] = p["second"]
    # Bags in front of the body.
    bag_side = p["bag_side"] * (-1 if view == "back" else 1)
    if p["bag"] == "backpack" and view == "front":
        for sx in (cx - 0.55 * sh_half, cx + 0.55 * sh_half):
            img[_rect(sh_y, top + 0.42 * u, sx - 0.02 * u - 0.5, sx + 0.02 * u + 0.5)] = p["bag_colour"]
    elif p["bag"] == "handbag" and (not side or (view == "right") == (p["bag_side"] > 0)):
        hx = cx + bag_side * (sh_half + 0.06 * u) if not side else cx + 0.04 * u
        img[_rect(top + 0.45 * u, top + 0.6 * u, hx - 0.06 * u, hx + 0.06 * u)] = p["bag_colour"]
    elif p["bag"] == "shoulder":
        strap = _segment(
            sh_y, cx - bag_side * 0.7 * sh_half, hip_y - 0.05 * u, cx + bag_side * hip_half, 0.015 * u + 0.6
        )
        img[strap] = p["bag_colour"]
        bx = cx + bag_side * (hip_half + 0.03 * u)
        img[_rect(hip_y - 0.08 * u, hip_y + 0.04 * u, bx - 0.06 * u, bx + 0.06 * u)] = p["bag_colour"]
    # Head, hair, hat.
    head_y, head_r = top + 0.075 * u, 0.065 * u
    img[_rect(top + 0.13 * u, sh_y + 0.01 * u, cx - 0.025 * u, cx + 0.025 * u)] = p["skin"]  # neck
    img[_ellipse(head_y, cx, head_r, 0.8 * head_r)] = p["hair"] if view == "back" else p["skin"]
    hair = _ellipse(head_y - 0.3 * head_r, cx, 0.8 * head_r, 0.85 * head_r) & (_YY < head_y)
    if side:
        hair |= _ellipse(head_y, cx - facing * 0.3 * head_r, head_r, 0.6 * head_r)
    if p["long_hair"]:
        face = _ellipse(head_y, cx, head_r, 0.6 * head_r) & (view == "front")
        hair |= (
            _rect(head_y, sh_y + (0.12 * u if view == "back" else 0.02 * u), cx - 0.9 * head_r, cx + 0.9 * head_r)
            & ~face
        )
    img[hair] = p["hair"]
    if p["hat"] is not None:
        img[_rect(top - 0.01 * u, head_y - 0.25 * head_r, cx - head_r, cx + head_r)] = p["hat"]


def _blur(img, sigma):
    """Separable Gaussian blur with edge padding."""
    radius = int(np.ceil(2.5 * sigma))
    if radius < 1:
        return img
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(img, pad, mode="edge")
        n = img.shape[axis]
        img = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(k))
    return img


# The drawing functions under public names, for the video sequences (sal_tf/data/demo_sequences.py).
person_params, camera_params, muted, draw_person, blur = _person_params, _camera_params, _muted, _draw_person, _blur


def _finish(img, cam, rng):
    """Camera imaging: blur, colour cast, brightness, gamma, contrast, noise → uint8."""
    img = _blur(img, cam["blur"] * rng.uniform(0.8, 1.2))
    img = img * cam["cast"] * cam["brightness"] * rng.uniform(0.92, 1.08)
    img = np.clip(img, 0, 1) ** cam["gamma"]
    img = 0.5 + (img - 0.5) * cam["contrast"]
    # Directional shading (sun / lamp), varying per frame.
    img = img * (1 + rng.uniform(-0.12, 0.12) * (_XX / IMAGE_WIDTH - 0.5))[..., None]
    img = img + rng.normal(0, cam["noise"], img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def _render_frame(person, cam, view, phase, rng):
    img = _background(cam, rng)
    height = IMAGE_HEIGHT * cam["scale"] * rng.uniform(0.92, 1.06)
    foot_y = IMAGE_HEIGHT - cam["foot_margin"] - rng.uniform(-2, 3)
    cx = IMAGE_WIDTH / 2 + rng.normal(0, 2.5)
    if rng.random() < 0.08:  # a passer-by half in the frame, behind the person
        stranger = _person_params(rng)
        side = rng.choice([-1, 1])
        _draw_person(
            img,
            stranger,
            VIEWS[rng.integers(4)],
            cx + side * rng.uniform(26, 36),
            foot_y + rng.uniform(-4, 4),
            height * rng.uniform(0.9, 1.05),
            rng.uniform(0, 2 * np.pi),
        )
    _draw_person(img, person, view, cx, foot_y, height, phase)
    return _finish(img, cam, rng)


def _render_distractor(cam, rng):
    """pid 0: a false detection (background, or a stranger badly framed)."""
    img = _background(cam, rng)
    if rng.random() < 0.6:
        stranger = _person_params(rng)
        height = IMAGE_HEIGHT * rng.uniform(0.35, 1.6)
        _draw_person(
            img,
            stranger,
            VIEWS[rng.integers(4)],
            rng.uniform(0, IMAGE_WIDTH),
            rng.uniform(0.5, 1.5) * IMAGE_HEIGHT,
            height,
            rng.uniform(0, 2 * np.pi),
        )
    return _finish(img, cam, rng)


def _render_junk(person, cam, rng):
    """pid -1: a fragment of a test identity (zoomed on part of the body)."""
    img = _background(cam, rng)
    height = IMAGE_HEIGHT * rng.uniform(1.6, 2.6)
    foot_y = IMAGE_HEIGHT + rng.uniform(-0.2, 1.0) * height * 0.6
    _draw_person(
        img,
        person,
        VIEWS[rng.integers(4)],
        IMAGE_WIDTH / 2 + rng.normal(0, 8),
        foot_y,
        height,
        rng.uniform(0, 2 * np.pi),
    )
    return _finish(img, cam, rng)


def _tracklets(rng, num_ids, min_len, max_len):
    """Per id: a list of (camera 0..5, view, number of frames)."""
    out = []
    for _ in range(num_ids):
        num_cams = rng.choice([2, 3, 4, 5, 6], p=[0.3, 0.3, 0.2, 0.12, 0.08])
        cams = np.sort(rng.choice(NUM_CAMERAS, num_cams, replace=False))
        out.append(
            [
                (int(c), VIEWS[rng.choice(4, p=[0.35, 0.35, 0.15, 0.15])], int(rng.integers(min_len, max_len + 1)))
                for c in cams
            ]
        )
    return out


def generate_demo_dataset(out_dir, seed=0, num_train_ids=150, num_test_ids=150, num_distractors=None, num_junk=None):
    """Writes the demo dataset into `out_dir` (created; must not hold a previous dataset).

    Long because the order of the random draws is the dataset: identities, then per-split images
    from one generator, so that a seed gives byte-identical files across releases.

    Args:
        out_dir: folder that receives `bounding_box_train/`, `query/`, `bounding_box_test/`.
        seed: generator seed; the same seed gives byte-identical files.
        num_train_ids, num_test_ids: identities per split (each >= 1).
        num_distractors, num_junk: gallery images with pid 0 / -1; default
            `num_test_ids * 4 // 3` and `num_test_ids`.

    Returns:
        `out_dir` (the Market-layout root, readable by `load_market1501`).
    """
    if num_train_ids < 1 or num_test_ids < 1:
        raise ValueError(f"num_train_ids and num_test_ids must be >= 1; got {num_train_ids} and {num_test_ids}.")
    import tensorflow as tf  # local: the parsers must not need TensorFlow

    num_distractors = num_test_ids * 4 // 3 if num_distractors is None else num_distractors
    num_junk = num_test_ids if num_junk is None else num_junk
    rng = np.random.default_rng(seed)
    cameras = [_camera_params(rng) for _ in range(NUM_CAMERAS)]
    num_ids = num_train_ids + num_test_ids
    # Market numbers train and test ids from one range; ids 1..(4/3·N) with gaps, shuffled into splits.
    pids = np.sort(rng.choice(np.arange(1, num_ids * 4 // 3 + 2), num_ids, replace=False))
    is_test = np.zeros(num_ids, bool)
    is_test[rng.choice(num_ids, num_test_ids, replace=False)] = True
    people = [_person_params(rng) for _ in range(num_ids)]
    tracks = _tracklets(rng, num_ids, 2, 5)

    dirs = {k: os.path.join(out_dir, k) for k in ("bounding_box_train", "query", "bounding_box_test")}
    for d in dirs.values():
        if os.path.isdir(d) and os.listdir(d):
            raise ValueError(f"{d!r} is not empty: generate the demo dataset into a new folder.")
        os.makedirs(d, exist_ok=True)
    frame_counter = {}

    def write(folder, pid, cam, image, quality):
        seq = 1 + (cam * 7 + abs(pid)) % 6
        frame = frame_counter.get((cam, seq), 0) + int(rng.integers(5, 60))
        frame_counter[(cam, seq)] = frame
        name = (
            f"{pid:04d}_c{cam + 1}s{seq}_{frame:06d}_01.jpg"
            if pid >= 0
            else f"{pid}_c{cam + 1}s{seq}_{frame:06d}_01.jpg"
        )
        data = tf.io.encode_jpeg(image, quality=quality).numpy()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)

    for i in range(num_ids):
        person, pid = people[i], int(pids[i])
        queries = set()
        if is_test[i]:  # one query per camera (~85 %), at least one per id
            queries = {c for c, _, _ in tracks[i] if rng.random() < 0.85} or {tracks[i][0][0]}
        for cam, view, length in tracks[i]:
            phase = rng.uniform(0, 2 * np.pi)
            for f in range(length):
                image = _render_frame(person, cameras[cam], view, phase + 0.9 * f, rng)
                if not is_test[i]:
                    folder = dirs["bounding_box_train"]
                elif f == 0 and cam in queries:
                    folder = dirs["query"]
                else:
                    folder = dirs["bounding_box_test"]
                write(folder, pid, cam, image, cameras[cam]["quality"])
    test_people = [people[i] for i in np.flatnonzero(is_test)]
    for _ in range(num_distractors):
        cam = int(rng.integers(NUM_CAMERAS))
        write(dirs["bounding_box_test"], 0, cam, _render_distractor(cameras[cam], rng), cameras[cam]["quality"])
    for _ in range(num_junk):
        cam = int(rng.integers(NUM_CAMERAS))
        person = test_people[rng.integers(len(test_people))]
        write(dirs["bounding_box_test"], -1, cam, _render_junk(person, cameras[cam], rng), cameras[cam]["quality"])
    return out_dir


def ensure_demo_dataset(cache_dir, seed=0, num_train_ids=150, num_test_ids=150):
    """Returns the demo dataset root under `cache_dir`, generating it on first use.

    Generation writes into a temporary sibling folder and renames it into place
    (`sal_tf.utils.files.generate_folder_once`). The folder name holds the generator version, the
    seed and (when not the default) the size.
    """
    size = "" if (num_train_ids, num_test_ids) == (150, 150) else f"_{num_train_ids}x{num_test_ids}"
    return generate_folder_once(
        cache_dir,
        f"demo_market_v{VERSION}_seed{seed}{size}",
        lambda folder: generate_demo_dataset(folder, seed=seed, num_train_ids=num_train_ids, num_test_ids=num_test_ids),
    )


def main(argv):
    del argv
    from absl import flags

    f = flags.FLAGS
    root = generate_demo_dataset(f.out, seed=f.seed, num_train_ids=f.num_train_ids, num_test_ids=f.num_test_ids)
    from sal_tf.data.market1501 import load_market1501

    load_market1501(root, verbose=True)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("out", None, "Output folder (Market-1501 layout).", required=True)
    flags.DEFINE_integer("seed", 0, "Generator seed (same seed → identical files).")
    flags.DEFINE_integer("num_train_ids", 150, "Training identities.")
    flags.DEFINE_integer("num_test_ids", 150, "Test identities (query + gallery).")
    app.run(main)

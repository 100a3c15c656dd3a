"""Rank-list pictures: a query and its top-k gallery images, framed green (match) or red.

Layout of one row (`rank_list_image`), every image resized to the query's h×w:

    [query, black frame] 4·border white [g1] border white [g2] ... [gk]

Each cell is (h + 2·border) × (w + 2·border) with a `border`-pixel frame, so the row is
h + 2·border high and (k + 1)(w + 2·border) + (k + 3)·border wide (k >= 1).
"""

import numpy as np
import tensorflow as tf

MATCH_COLOR = (0, 255, 0)
MISS_COLOR = (255, 0, 0)
QUERY_COLOR = (0, 0, 0)
BACKGROUND = 255


def _as_image(x, name, size=None):
    if hasattr(x, "numpy"):
        x = x.numpy()
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"`{name}` must be an [H, W, 3] image. Received shape: {x.shape}")
    if size is not None and x.shape[:2] != tuple(size):
        x = tf.image.resize(x.astype(np.float32), size, antialias=True).numpy()
    if x.dtype != np.uint8:
        x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x


def _framed(img, color, border):
    h, w, _ = img.shape
    cell = np.empty((h + 2 * border, w + 2 * border, 3), dtype=np.uint8)
    cell[...] = np.asarray(color, dtype=np.uint8)
    cell[border : border + h, border : border + w] = img
    return cell


def rank_list_image(query_image, gallery_images, matches, border=4):
    """One rank-list row: the query, then the gallery images framed by match status.

    Args:
        query_image: [h, w, 3] uint8 (or float in [0, 255]).
        gallery_images: sequence of [H, W, 3] images, best first (resized to h×w).
        matches: sequence of bools, one per gallery image (True: same identity).
        border: frame width in pixels (>= 1).

    Returns:
        uint8 [h + 2·border, (k + 1)(w + 2·border) + (k + 3)·border, 3] (k >= 1;
        just the framed query when k = 0).
    """
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 1:
        raise ValueError(f"`border` must be an integer >= 1. Received: border={border!r}")
    query = _as_image(query_image, "query_image")
    matches = [bool(m) for m in np.asarray(matches).reshape(-1)]
    if len(matches) != len(gallery_images):
        raise ValueError(
            f"`matches` must have one entry per gallery image. Received {len(matches)} "
            f"matches for {len(gallery_images)} images."
        )
    size = query.shape[:2]
    cells = [_framed(query, QUERY_COLOR, border)]
    for t, (img, m) in enumerate(zip(gallery_images, matches)):
        img = _as_image(img, f"gallery_images[{t}]", size)
        cells.append(_framed(img, MATCH_COLOR if m else MISS_COLOR, border))
    ch, cw, _ = cells[0].shape
    k = len(cells) - 1
    width = cw if k == 0 else (k + 1) * cw + (k + 3) * border
    canvas = np.full((ch, width, 3), BACKGROUND, dtype=np.uint8)
    canvas[:, :cw] = cells[0]
    x = cw + 4 * border
    for cell in cells[1:]:
        canvas[:, x : x + cw] = cell
        x += cw + border
    return canvas


def _load(path, size):
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Rank list: image file not found: {path}")
    img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    img = tf.image.resize(tf.cast(img, tf.float32), size, antialias=True)
    return np.clip(np.round(img.numpy()), 0, 255).astype(np.uint8)


def save_rank_lists(
    path_png,
    distmat,
    query_records,
    gallery_records,
    q_indices,
    topk=10,
    image_size=(128, 64),
    border=4,
):
    """Draws the rank lists of some queries, one row each, and writes them as a PNG.

    The listed gallery items follow the evaluation protocol: same pid and same camera
    as the query, and junk (pid −1), are left out; order is ascending distance, ties by
    the lower gallery index.

    Args:
        path_png: output file (parent folders are created; any `tf.io.gfile` path), or None
            to only return the picture.
        distmat: [num_query, num_gallery] distances.
        query_records, gallery_records: sequences of records with `.path`, `.pid`, `.camid`.
        q_indices: query rows to draw.
        topk: gallery images per row.
        image_size: (h, w) every image is resized to.
        border: frame width in pixels.

    Returns:
        uint8 [H, W, 3], the picture written (e.g. for `tf.summary.image`).
    """
    distmat = np.asarray(distmat)
    if distmat.ndim != 2 or distmat.shape != (len(query_records), len(gallery_records)):
        raise ValueError(
            f"`distmat` must have shape (len(query_records), len(gallery_records)) = "
            f"({len(query_records)}, {len(gallery_records)}). Received shape: {distmat.shape}"
        )
    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
        raise ValueError(f"`topk` must be an integer >= 1. Received: topk={topk!r}")
    q_indices = [int(i) for i in np.asarray(q_indices).reshape(-1)]
    if not q_indices:
        raise ValueError("`q_indices` is empty: name at least one query row to draw.")
    for i in q_indices:
        if not 0 <= i < len(query_records):
            raise ValueError(f"`q_indices` entry {i} is out of range [0, {len(query_records)}).")
    size = tuple(int(v) for v in image_size)
    g_pids = np.asarray([r.pid for r in gallery_records])
    g_cams = np.asarray([r.camid for r in gallery_records])
    rows = []
    for i in q_indices:
        q = query_records[i]
        keep = (g_pids != -1) & ~((g_pids == q.pid) & (g_cams == q.camid))
        order = np.argsort(distmat[i], kind="stable")
        order = order[keep[order]][:topk]
        gallery = [_load(gallery_records[j].path, size) for j in order]
        rows.append(rank_list_image(_load(q.path, size), gallery, g_pids[order] == q.pid, border))
    width = max(r.shape[1] for r in rows)
    sep = np.full((border, width, 3), BACKGROUND, dtype=np.uint8)
    parts = []
    for t, r in enumerate(rows):
        if r.shape[1] < width:
            pad = np.full((r.shape[0], width - r.shape[1], 3), BACKGROUND, dtype=np.uint8)
            r = np.concatenate([r, pad], axis=1)
        parts.extend([sep, r] if t else [r])
    image = np.concatenate(parts, axis=0)
    if path_png is not None:  # None: only return the picture (e.g. for TensorBoard)
        parent = path_png.rsplit("/", 1)[0] if "/" in str(path_png) else ""
        if parent:
            tf.io.gfile.makedirs(parent)
        tf.io.write_file(str(path_png), tf.io.encode_png(image))
    return image

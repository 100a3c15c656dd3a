"""Pictures of results drawn with matplotlib (Agg, no display): rank lists and attention maps.

* Rank lists: per row the query (black frame, its id), a gap, then its top-k gallery images in
  order, each framed green (same identity), red (another identity) or grey (id unknown) and
  labelled with its rank, id and distance; a legend explains the frames.
* Attention maps (paper Fig. 3): per row the image and its stage 4 / 5 / 6 maps (eq. 1) overlaid
  with the 'jet' colour map, each map min–max scaled to [0, 1]; stage names above the columns and
  one colour bar.

Every drawing function returns the picture as uint8 RGB [H, W, 3] (for TensorBoard add a batch
axis: `tf.summary.image(name, picture[None], step)`) and writes it as a PNG when given a path
(any `tf.io.gfile` path; parent folders are created). Figures are `matplotlib.figure.Figure`s on
their own Agg canvas: no pyplot state, safe in a training process.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sal_tf.utils.checks import check_int
from sal_tf.utils.person_ids import JUNK_PID, camera_number

MATCH_COLOR = (26, 152, 80)  # green: same identity
MISS_COLOR = (215, 48, 39)  # red: another identity
UNKNOWN_COLOR = (150, 150, 150)  # grey: identity unknown
QUERY_COLOR = (0, 0, 0)
DPI = 100
FONT_SIZE = 8
CELL_INCHES = 1.05  # width of one image cell; height follows the image aspect


@dataclasses.dataclass
class RankRow:
    """One rank-list row: the query and its ranked gallery images.

    Attributes:
        query: [h, w, 3] image (uint8, or float in 0..255).
        query_label: text under "query" (e.g. "pid 2 · cam 1").
        images: gallery images, best first.
        labels: one text per gallery image (e.g. "pid 3 · cam 2\\nd=0.412").
        matches: one True / False / None (unknown) per gallery image.
    """

    query: object
    query_label: str
    images: list
    labels: list
    matches: list


def to_uint8_image(x, name="image", size=None):
    """`x` as uint8 RGB [h, w, 3] (grey [h, w, 1] repeated; float rounded), resized to `size`."""
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


def load_image(path, size=None):
    """Reads and decodes an image file (any `tf.io.gfile` path) → uint8 [h, w, 3], resized to `size`."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Picture: image file not found: {path}")
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return to_uint8_image(image, path, size)


def figure_to_array(fig):
    """Renders `fig` → uint8 RGB [H, W, 3]."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_png(path, image):
    """Writes uint8 RGB [H, W, 3] as a PNG (parent folders created; any `tf.io.gfile` path)."""
    path = str(path)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        tf.io.gfile.makedirs(parent)
    tf.io.write_file(path, tf.io.encode_png(image))


def _finish(fig, path):
    image = figure_to_array(fig)
    if path is not None:
        write_png(path, image)
    return image


def _rgb(color):
    return tuple(c / 255.0 for c in color)


def _show(ax, image, color, linewidth, label):
    ax.imshow(image, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(_rgb(color))
        spine.set_linewidth(linewidth)
    ax.set_title(label, fontsize=FONT_SIZE, pad=3)


def rank_list_figure(rows, image_size=(128, 64), title=None, linewidth=4):
    """A `Figure` of rank-list rows (`RankRow`), images resized to `image_size` (h, w)."""
    if not rows:
        raise ValueError("rank_list_figure: no rows to draw.")
    k = max(1, max(len(r.images) for r in rows))
    h, w = (int(s) for s in image_size)
    cell_h = CELL_INCHES * h / w + 0.45  # image + two lines of label
    fig = Figure(figsize=(CELL_INCHES * (k + 1.3), cell_h * len(rows) + 0.5 + 0.3 * bool(title)), dpi=DPI)
    fig.set_layout_engine("constrained")
    grid = fig.add_gridspec(len(rows), k + 2, width_ratios=[1, 0.15] + [1] * k)
    for r, row in enumerate(rows):
        _show(
            fig.add_subplot(grid[r, 0]),
            to_uint8_image(row.query, "query", (h, w)),
            QUERY_COLOR,
            linewidth,
            f"query\n{row.query_label}",
        )
        for t, (image, label, match) in enumerate(zip(row.images, row.labels, row.matches)):
            color = UNKNOWN_COLOR if match is None else MATCH_COLOR if match else MISS_COLOR
            _show(
                fig.add_subplot(grid[r, t + 2]),
                to_uint8_image(image, f"gallery image {t}", (h, w)),
                color,
                linewidth,
                label,
            )
    handles = [
        Patch(facecolor="none", edgecolor=_rgb(MATCH_COLOR), linewidth=3, label="same identity"),
        Patch(facecolor="none", edgecolor=_rgb(MISS_COLOR), linewidth=3, label="different identity"),
    ]
    if any(m is None for row in rows for m in row.matches):
        handles.append(Patch(facecolor="none", edgecolor=_rgb(UNKNOWN_COLOR), linewidth=3, label="identity unknown"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=FONT_SIZE + 1, frameon=False)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 2)
    return fig


def rank_list_image(
    query_image,
    gallery_images,
    matches=None,
    border=4,
    *,
    query_label="",
    labels=None,
    distances=None,
    image_size=None,
    title=None,
    path=None,
):
    """One rank-list row as uint8 RGB [H, W, 3] (and a PNG at `path`).

    Args:
        query_image: [h, w, 3] uint8 or float 0..255; gallery images are drawn at its size
            (or at `image_size`).
        gallery_images: images, best first.
        matches: one bool per gallery image (True: same identity), or None (unknown).
        query_label, labels: texts for the query and each gallery image (default: the rank).
        distances: one number per gallery image, appended as "d=…".
        border: frame width in points (>= 1).
    """
    check_int(border, "border")
    query = to_uint8_image(query_image, "query_image")
    n = len(gallery_images)
    matches = [None] * n if matches is None else [None if m is None else bool(m) for m in matches]
    if len(matches) != n:
        raise ValueError(f"`matches` must have one entry per gallery image. Received {len(matches)} for {n} images.")
    labels = [f"rank {t + 1}" for t in range(n)] if labels is None else [str(s) for s in labels]
    if distances is not None:
        labels = [f"{s}\nd={float(d):.3f}" for s, d in zip(labels, distances)]
    if len(labels) != n:
        raise ValueError(f"`labels` must have one entry per gallery image. Received {len(labels)} for {n} images.")
    row = RankRow(query, query_label, list(gallery_images), labels, matches)
    return _finish(rank_list_figure([row], image_size or query.shape[:2], title, linewidth=border), path)


def protocol_order(distances, pid, camid, g_pids, g_camids, topk):
    """Gallery rows shown for one query: ascending distance (ties: lower row), without junk
    (pid −1) and without the query's pid seen by the query's camera (the evaluation protocol)."""
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    keep = (g_pids != JUNK_PID) & ~((g_pids == pid) & (g_camids == camid))
    order = np.argsort(np.asarray(distances), kind="stable")
    return order[keep[order]][:topk]


def _id_text(record):
    """pid and camera as the file name numbers it (`c1` → "cam 1"; a CSV's camera as given)."""
    return f"pid {record.pid} · cam {camera_number(record.path, record.camid)}"


def save_rank_lists(
    path_png, distmat, query_records, gallery_records, q_indices, topk=10, image_size=(128, 64), border=4
):
    """Draws the rank lists of some queries (one row each); returns uint8 RGB [H, W, 3], writes a PNG.

    The listed gallery items follow the evaluation protocol: same pid and same camera as the query,
    and junk (pid −1), are left out; order is ascending distance, ties by the lower gallery index.

    Args:
        path_png: output file (any `tf.io.gfile` path), or None to only return the picture.
        distmat: [num_query, num_gallery] distances (labelled "d=" under each image).
        query_records, gallery_records: sequences of records with `.path`, `.pid`, `.camid`.
        q_indices: query rows to draw.
        topk: gallery images per row.
        image_size: (h, w) every image is drawn at.
        border: frame width in points.
    """
    distmat = np.asarray(distmat)
    if distmat.ndim != 2 or distmat.shape != (len(query_records), len(gallery_records)):
        raise ValueError(
            f"`distmat` must have shape (len(query_records), len(gallery_records)) = "
            f"({len(query_records)}, {len(gallery_records)}). Received shape: {distmat.shape}"
        )
    check_int(topk, "topk")
    check_int(border, "border")
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
        order = protocol_order(distmat[i], q.pid, q.camid, g_pids, g_cams, topk)
        labels = [f"{t + 1}: {_id_text(gallery_records[j])}\nd={distmat[i, j]:.3f}" for t, j in enumerate(order)]
        images = [load_image(gallery_records[j].path, size) for j in order]
        rows.append(
            RankRow(
                load_image(q.path, size),
                f"#{i} {_id_text(q)}",
                images,
                labels,
                [bool(m) for m in g_pids[order] == q.pid],
            )
        )
    return _finish(rank_list_figure(rows, size, linewidth=border), path_png)


def _min_max(a):
    a = np.nan_to_num(np.asarray(a, np.float32))
    return (a - a.min()) / max(float(a.max() - a.min()), 1e-12)


def attention_figure(images, attention, map_size, *, stage_names=None, labels=None, alpha=0.5, path=None):
    """Attention maps overlaid on their images (paper Fig. 3): uint8 RGB [H, W, 3] (and a PNG at `path`).

    Args:
        images: RGB [N, H, W, 3], uint8 or float 0..255.
        attention: [N, S, h·w] maps (the `SALModel` `attention` output; rows are row-major h×w grids).
        map_size: (h, w) of each map (`SALModel.attention_map_size`).
        stage_names: S column titles (default "stage 4", "stage 5", "stage 6", ...).
        labels: N row labels (e.g. file names), or None.
        alpha: opacity of the heat map.
    """
    images = [to_uint8_image(x, f"images[{i}]") for i, x in enumerate(images)]
    attention = np.asarray(attention, np.float32)
    h, w = (int(s) for s in map_size)
    if attention.ndim != 3 or attention.shape[0] != len(images) or attention.shape[2] != h * w:
        raise ValueError(
            f"`attention` must be [N={len(images)}, stages, h·w={h * w}] for map_size {(h, w)}. "
            f"Received shape: {attention.shape}"
        )
    if not images:
        raise ValueError("attention_figure: no images to draw.")
    stages = attention.shape[1]
    names = list(stage_names or [f"stage {4 + s}" for s in range(stages)])
    if len(names) != stages:
        raise ValueError(f"`stage_names` must name the {stages} attention maps. Received: {names}")
    ih, iw = images[0].shape[:2]
    fig = Figure(figsize=(CELL_INCHES * (stages + 1) + 1.0, (CELL_INCHES * ih / iw + 0.3) * len(images) + 0.2), dpi=DPI)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(len(images), stages + 1, squeeze=False)
    for i, image in enumerate(images):
        extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
        for s in range(stages + 1):
            ax = axes[i, s]
            ax.imshow(image, interpolation="bilinear")
            if s:
                heat = _min_max(attention[i, s - 1]).reshape(h, w)
                ax.imshow(heat, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0, extent=extent, interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("image" if s == 0 else names[s - 1], fontsize=FONT_SIZE + 1)
        if labels is not None:
            axes[i, 0].set_ylabel(str(labels[i]), fontsize=FONT_SIZE)
    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap="jet"), ax=axes, shrink=0.9, aspect=30)
    bar.set_label("attention (min–max per map)", fontsize=FONT_SIZE)
    bar.ax.tick_params(labelsize=FONT_SIZE)
    return _finish(fig, path)

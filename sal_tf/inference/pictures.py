"""Pictures for the commands: search results as rank lists, attention maps of chosen images.

Drawing is `sal_tf.evaluation.visualize` (matplotlib); this module only gathers the images,
ids and distances.
"""

import os

import numpy as np
import tensorflow as tf

from sal_tf.data import pipelines
from sal_tf.evaluation import visualize


def id_label(pid, camera, path):
    """ "pid 2 · c1" (the camera as the file name numbers it: `0002_c1s1_...` is c1), what of it is
    known, else the file's name."""
    parts = ([] if pid is None else [f"pid {pid}"]) + ([] if camera is None else [f"c{camera}"])
    return " · ".join(parts) if parts else os.path.basename(path or "")


def search_picture(results, path, image_size=(128, 64), max_queries=4, title=None):
    """Rank lists of the first `max_queries` entries of search results; writes a PNG.

    `results`: the search command's entries (`sal_tf/cli/search/output.py`: hits with `rank`, `path`,
    `distance`, and `person_id` / `camera` where known; cameras are drawn as the file names number them).
    Frames: green / red where both the query's and the match's person id are known, grey otherwise.
    Returns uint8 RGB [H, W, 3].
    """
    rows = []
    for entry in results[:max_queries]:
        if not entry.get("query"):
            raise ValueError("--picture needs query image files (the queries' paths are unknown).")
        hits = entry["results"]
        if any(not h.get("path") for h in hits):
            raise ValueError("--picture needs the gallery items' image paths; some results have none.")
        labels = [
            f"{h['rank']}: {id_label(h.get('person_id'), h.get('camera'), h['path'])}\nd={h['distance']:.3f}"
            for h in hits
        ]
        rows.append(
            visualize.RankRow(
                visualize.load_image(entry["query"], image_size),
                id_label(entry.get("query_person_id"), entry.get("query_camera"), entry["query"]),
                [visualize.load_image(h["path"], image_size) for h in hits],
                labels,
                [h.get("match") for h in hits],
            )
        )
    fig = visualize.rank_list_figure(rows, image_size, title)
    image = visualize.figure_to_array(fig)
    visualize.write_png(path, image)
    return image


def attention_picture(embedder, paths, path, alpha=0.5):
    """Attention maps (paper Fig. 3) of image files `paths` with a Keras-form `embedder`; writes a PNG.

    Images are read and resized as for embedding (`pipelines.load_image`) and drawn at the model's
    input size, as the model saw them; files that do not decode are left out.

    Returns:
        (uint8 RGB [H, W, 3], the paths drawn).
    """
    if not embedder.has_attention:
        embedder.attention(np.zeros((0, *embedder.image_size, 3), np.uint8))  # raises the clear error
    images, drawn = [], []
    for p in paths:
        try:
            images.append(pipelines.load_image(p, embedder.image_size).numpy())  # as embedded
            drawn.append(p)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            continue
    if not images:
        raise ValueError(f"None of the {len(paths)} image file(s) could be read and decoded: {paths[:5]}")
    attention = embedder.attention(np.stack(images))
    stages = [s.replace("stage", "stage ") for s in embedder.attention_stages]
    return visualize.attention_figure(
        images,
        attention,
        embedder.attention_grid,
        stage_names=stages,
        labels=[os.path.basename(p) for p in drawn],
        alpha=alpha,
        path=path,
    ), drawn

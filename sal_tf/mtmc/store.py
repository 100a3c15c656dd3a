"""`sal-mtmc --store=…`: each tracklet into a gallery store (`sal_tf.gallery`), searchable by crop and by person.

One item per tracklet (after splitting and linking), its embedding the tracklet's pooled one:

    id         "<run>/<camera>/<local track>"  (run: --store_run, default the output folder's name)
    camera     the camera's number (`camera_numbers`)
    timestamp  unix seconds of the tracklet's first frame (UTC; naive start times are taken as UTC),
               or seconds on the run's time line when the cameras have no start time
    path       the tracklet's best crop (`<output_dir>/crops/<global id>/<camera>_<track>.jpg`)
    person_id  the global id

so a search by crop returns tracklets with their global ids (`person_id`), and a person's journey is
their items in time order. Adding again replaces the run's items (the ids are stable).
"""

import datetime
import os
import re

import numpy as np


def camera_numbers(cameras):
    """{camera name: number}: the digits ending each name when they tell the cameras apart ("c3" → 3), else 1, 2, …"""
    digits = [re.search(r"(\d+)$", c.name) for c in cameras]
    numbers = [int(d.group(1)) if d else None for d in digits]
    if None in numbers or len(set(numbers)) < len(numbers):
        numbers = list(range(1, len(cameras) + 1))
    return {c.name: n for c, n in zip(cameras, numbers)}


def timestamp(camera, tracklet):
    """Unix seconds of the tracklet's first frame (UTC), or its seconds on the run's time line."""
    if camera.start is None:
        return float(tracklet.start)
    start = camera.start + datetime.timedelta(seconds=(tracklet.first - 1) / camera.fps)
    return start.replace(tzinfo=datetime.UTC).timestamp()


def add_tracklets(location, tracklets, ids, cameras, output_dir, run_name, model=None):
    """Adds every tracklet to the store at `location` (created when missing); returns the number added."""
    from sal_tf.gallery import Item, open_store

    if not tracklets:
        return 0
    numbers, by_name = camera_numbers(cameras), {c.name: c for c in cameras}
    embeddings = np.stack([t.feature for t in tracklets]).astype(np.float32)
    items = []
    for t in tracklets:
        gid = ids[(t.camera, t.track)]
        crop = os.path.join(output_dir, "crops", str(gid), f"{t.camera}_{t.track}.jpg")
        items.append(
            Item(
                id=f"{run_name}/{t.camera}/{t.track}",
                camera=numbers[t.camera],
                timestamp=timestamp(by_name[t.camera], t),
                path=os.path.abspath(crop) if t.crops else None,
                person_id=gid,
            )  # fmt: skip
        )
    usable = np.linalg.norm(embeddings, axis=1) > 0
    with open_store(location, dim=embeddings.shape[1]) as store:
        if model is not None and hasattr(store, "record_model"):
            store.record_model(model)
        store.add(embeddings[usable], [item for item, ok in zip(items, usable) if ok])
    return int(usable.sum())

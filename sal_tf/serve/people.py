"""Who is who across cameras (issue 28): "same person?" per hit, hits grouped by person, a person's journey.

* **same_person**: the probability that a hit shows the query's person, from the model's
  calibration (`sal_tf.evaluation.calibration`: isotonic map of cross-camera pair distances,
  at an even prior) read at start-up: `--calibration=FILE`, else the one `calibration.find`
  finds beside `--model` (a training folder's results.json, a calibration.json beside the file).
  Without one (TF Serving, a model never evaluated) every hit's `same_person` is null.
* **groups**: a search's hits grouped by `person_id` (sal-mtmc's global id), nearest person first;
  hits without a person id stay in `results` only.
* **journeys**: a person's items in time order (`GalleryStore.items_of_person`), one per
  tracklet of a store that `sal-mtmc --store` filled.
* **files under `--paths_root`**: an item's `path` (sal-mtmc: its best crop) is served as its crop
  when the service stored none, only when it resolves (links followed) inside that folder.
"""

import os

from sal_tf.serve.images import content_type

MAX_CROP_FILE_BYTES = 16 * 1024 * 1024  # a larger file at an item's path is not served


def open_calibration(settings):
    """(calibration dict or None, where it came from or why there is none) for `settings`."""
    from sal_tf.evaluation import calibration

    if settings.calibration:
        path = os.path.expanduser(settings.calibration)
        if not os.path.isfile(path):
            raise ValueError(f"--calibration={settings.calibration}: no such file (a calibration or results JSON).")
        try:
            return calibration.from_json(path), path
        except ValueError as e:
            raise ValueError(f"--calibration: {e}") from None
    if not settings.model:
        return None, "no calibration (give --calibration=FILE): same_person is null"
    try:
        found = calibration.find(settings.model)
    except (OSError, ValueError) as e:  # a damaged results.json beside the model: serve without
        return None, f"no calibration ({e}): same_person is null"
    if found is None:
        return None, "the model has no calibration (sal-evaluate writes one): same_person is null"
    return found, "the model's calibration"


def same_person(calibration, distance, metric):
    """P(same person) of one distance (the store's `metric`), rounded to 4 places; None without a calibration."""
    if calibration is None:
        return None
    from sal_tf.evaluation.calibration import probability

    return round(float(probability(calibration, distance, metric=metric)), 4)


def group_by_person(hits):
    """Hit JSONs (nearest first) → [{"person_id", "distance", "same_person", "hits"}] nearest person first.

    A group's distance and same_person are its nearest hit's; hits without a person id are left out.
    """
    groups = {}
    for hit in hits:
        if hit["person_id"] is None:
            continue
        group = groups.setdefault(hit["person_id"], {"person_id": hit["person_id"], "hits": []})
        if not group["hits"]:
            group["distance"], group["same_person"] = hit["distance"], hit["same_person"]
        group["hits"].append(hit)
    return list(groups.values())


def appearance_json(item):
    """A journey's appearance: the item's fields, as a hit's without the distance."""
    return {
        "id": item.id,
        "camera": item.camera,
        "timestamp": item.timestamp,
        "path": item.path,
        "person_id": item.person_id,
    }


def file_under(path, root):
    """(bytes, content type) of the image at `path` when it lies inside `root` (links resolved); else None."""
    if not path or not root or not os.path.isabs(path):
        return None
    real, base = os.path.realpath(path), os.path.realpath(os.path.expanduser(root))
    if os.path.commonpath([real, base]) != base or not os.path.isfile(real):
        return None
    if os.path.getsize(real) > MAX_CROP_FILE_BYTES:
        return None
    with open(real, "rb") as f:
        data = f.read()
    kind = content_type(data)
    return (data, kind) if kind else None

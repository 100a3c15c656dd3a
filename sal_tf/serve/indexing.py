"""Filling an empty gallery from image files at start-up (`sal-serve --index_images=...`).

Files come from `sal_tf.inference.sources.list_images` (a folder, a glob or a CSV); each item's id
is the file's path relative to the listed folder (stable: indexing again replaces, never
duplicates), its `path` that same name, and its camera / person id those of a Market / Duke style
file name or the CSV (cameras numbered as in the file name: `c1` is camera 1). Files that do not
decode are skipped and counted. The crops are stored as in `POST /v1/gallery`.
"""

import os
import sys

from sal_tf.serve.errors import ServiceError
from sal_tf.serve.service import Upload
from sal_tf.utils.progress import Progress


def uploads_of(images, root):
    """`Upload`s of an `ImageList` (file contents read here)."""
    out = []
    for i, path in enumerate(images.paths):
        name = os.path.relpath(path, root) if root else os.path.basename(path)
        with open(path, "rb") as f:
            data = f.read()
        pid = images.pids[i] if images.pids is not None else None
        camera = images.camids[i] + 1 if images.camids is not None else None
        out.append(Upload(data, path, name, camera, None, name, pid))
    return out


def add_skipping_bad(service, uploads):
    """Adds a batch; when it is refused, adds its files one by one. Returns the number skipped."""
    try:
        service.add(uploads)
        return 0
    except ServiceError:
        pass
    skipped = 0
    for u in uploads:
        try:
            service.add([u])
        except ServiceError as e:
            print(f"skipped {u.field}: {e.message}", file=sys.stderr)
            skipped += 1
    return skipped


def index_images(service, spec, batch_size, progress=True):
    """Adds the images `spec` names to the service's gallery; returns (added, skipped)."""
    from sal_tf.inference.sources import list_images

    images = list_images(spec, flag="--index_images")
    root = os.path.expanduser(spec) if os.path.isdir(os.path.expanduser(spec)) else None
    bar = Progress(len(images.paths), "Indexing", verbose=progress, unit="image", stream=sys.stderr, log_every=5)
    skipped = 0
    for start in range(0, len(images.paths), batch_size):
        chunk = images.paths[start : start + batch_size]
        part = type(images)(
            chunk,
            images.pids[start : start + batch_size] if images.pids is not None else None,
            images.camids[start : start + batch_size] if images.camids is not None else None,
        )
        skipped += add_skipping_bad(service, uploads_of(part, root))
        bar.update(start + len(chunk))
    bar.finish()
    return len(images.paths) - skipped, skipped

"""Filling an empty gallery from image files at start-up (`sal-serve --index_images=...`).

Files come from `sal_tf.inference.sources.list_images` (a folder, a glob or a CSV) and get the
metadata `sal-search add` gives them by default, from the one function both use
(`sal_tf.gallery.file_items.file_item`): the id and `path` are the file's absolute path
(indexing again replaces, never duplicates), the timestamp its modification time, the camera and
person id those of the CSV or a Market / Duke style name (`c1` is camera 1). Files that do not
decode are skipped and counted. The crops are stored as in `POST /v1/gallery`.
"""

import sys

from sal_tf.gallery.file_items import file_item
from sal_tf.inference import sources
from sal_tf.serve.failures import ServiceError
from sal_tf.serve.service import Upload
from sal_tf.utils.progress import Progress


def upload_of(images, i):
    """The `Upload` of file `i` of an `ImageList` (read here), or None when it cannot be read."""
    path = images.paths[i]
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"skipped {path}: {e.strerror}", file=sys.stderr)
        return None
    camera = images.camids[i] if images.camids is not None else None
    return Upload(data, path, file_item(path, camera, images.pids[i] if images.pids is not None else None))


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
    images = sources.list_images(spec, flag="--index_images")
    total = len(images.paths)
    bar = Progress(total, "Indexing", verbose=progress, unit="image", stream=sys.stderr, log_every=5)
    skipped = 0
    for start in range(0, total, batch_size):
        uploads = [upload_of(images, i) for i in range(start, min(start + batch_size, total))]
        readable = [u for u in uploads if u is not None]
        skipped += len(uploads) - len(readable) + (add_skipping_bad(service, readable) if readable else 0)
        bar.update(start + len(uploads))
    bar.finish()
    return total - skipped, skipped

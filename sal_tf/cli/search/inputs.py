"""What `sal-search` reads from its flags: embeddings (an .npz, or images embedded with --model), the
gallery's items (`file_item`'s defaults, changed by --camera / --ids / --timestamp), the queries'
cameras, and the query filters."""

import dataclasses
import datetime
import os

from absl import flags

from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def embeddings(spec, model, what):
    """`Embeddings` of an .npz, or of images embedded with `model`."""
    from sal_tf.cli import engine
    from sal_tf.inference import embedding_files, sources

    if spec.endswith(".npz"):
        return embedding_files.load_npz(spec)
    if not model:
        raise sal_app.UserError(f"{what} {spec!r} are images: pass --model to embed them (or give an .npz).")
    images = sources.list_images(spec, what)
    result = engine.embed_images(model, images, FLAGS.batch_size, FLAGS.flip, FLAGS.progress)
    if result.skipped:
        print(f"Skipped {len(result.skipped)} undecodable file(s): {', '.join(result.skipped[:10])}")
    return result


def file_items(emb):
    """The default `Item` of each row of `Embeddings` (`sal_tf.gallery.file_items.file_item`: its absolute
    path as id and path, the file's mtime, the camera and person id the .npz or the file name gives)."""
    from sal_tf.gallery.file_items import file_item

    count = len(emb.paths)
    camids = emb.camids if emb.camids is not None else [None] * count
    pids = emb.pids if emb.pids is not None else [None] * count
    return [file_item(p, c, pid) for p, c, pid in zip(emb.paths, camids, pids)]


def gallery_items(emb):
    """`file_items` of the gallery with the flags' changes: --camera, --ids, --timestamp."""
    items = file_items(emb)
    ids = _item_ids(emb.paths)
    mode = FLAGS.timestamp.strip().lower()
    fixed = None if mode in ("none", "mtime") else parse_time(FLAGS.timestamp, "timestamp")
    out = []
    for item, item_id in zip(items, ids):
        changes = {} if FLAGS.ids == "path" else {"id": item_id}
        if FLAGS.camera is not None:
            changes["camera"] = FLAGS.camera
        if mode != "mtime":
            changes["timestamp"] = fixed
        out.append(dataclasses.replace(item, **changes))
    return out


def parse_time(text, flag):
    """Unix seconds of `text`: a number, or an ISO 8601 date-time (UTC unless it names a zone)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise sal_app.UserError(
            f"--{flag}: {text!r} is neither unix seconds nor an ISO date-time (e.g. 2026-05-01T12:00:00)."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def camera_list():
    """--cameras as a list of camera numbers, or None."""
    if not FLAGS.cameras:
        return None
    cameras = []
    for text in FLAGS.cameras:
        value = text.strip().lower().removeprefix("c")
        if not value.lstrip("-").isdigit():
            raise sal_app.UserError(f"--cameras must list camera numbers, e.g. 1,3 or c1,c3. Received: {text!r}")
        cameras.append(int(value))
    return cameras


def time_range():
    """--time_range as (t0, t1) unix seconds, or None."""
    if not FLAGS.time_range:
        return None
    parts = FLAGS.time_range.split(",")
    if len(parts) != 2:
        raise sal_app.UserError(f"--time_range must be T0,T1 (two times). Received: {FLAGS.time_range!r}")
    t0, t1 = (parse_time(p, "time_range") for p in parts)
    if t0 > t1:
        raise sal_app.UserError(f"--time_range: the start {parts[0]!r} is after the end {parts[1]!r}.")
    return t0, t1


def query_cameras(queries):
    """Each query's camera for --exclude_own_camera (UserError naming a query whose camera is unknown)."""
    if FLAGS.query_camera is not None:
        return [FLAGS.query_camera] * len(queries.paths)
    cameras = [item.camera for item in file_items(queries)]
    if FLAGS.exclude_own_camera:
        unknown = [p for p, c in zip(queries.paths, cameras) if c is None]
        if unknown:
            raise sal_app.UserError(
                f"--exclude_own_camera needs each query's camera, but {len(unknown)} query file name(s) carry "
                f"none (e.g. {os.path.basename(unknown[0])!r}; Market/Duke names such as 0002_c1s1_000451_03.jpg "
                "do): give --query_camera=N."
            )
    return cameras


def _item_ids(paths):
    """--ids for each item: its absolute path, its file name, or None (a new uuid)."""
    if FLAGS.ids == "uuid":
        return [None] * len(paths)
    if FLAGS.ids == "name":
        ids = [os.path.basename(p) for p in paths]
        if len(set(ids)) != len(ids):
            raise sal_app.UserError("--ids=name: two files share a name; use --ids=path (the default).")
        return ids
    return [os.path.abspath(p) for p in paths]

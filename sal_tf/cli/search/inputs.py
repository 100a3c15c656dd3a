"""What `sal-search` reads from its flags: embeddings (an .npz, or images embedded with --model), the
items' cameras, person ids, times and ids, and the query filters."""

import datetime
import os

from absl import flags

from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def embeddings(spec, model, what):
    """`Embeddings` of an .npz, or of images embedded with `model`."""
    from sal_tf.inference import embedding_files, loading, sources

    if spec.endswith(".npz"):
        return embedding_files.load_npz(spec)
    if not model:
        raise sal_app.UserError(f"{what} {spec!r} are images: pass --model to embed them (or give an .npz).")
    images = sources.list_images(spec, what)
    result = embedding_files.embed_images(
        loading.load_embedder(model), images, FLAGS.batch_size, FLAGS.flip, FLAGS.progress
    )
    if result.skipped:
        print(f"Skipped {len(result.skipped)} undecodable file(s): {', '.join(result.skipped[:10])}")
    return result


def cameras_of(emb):
    """The camera of each row of `Embeddings` as a person numbers it (None where unknown)."""
    from sal_tf.inference import sources

    if emb.camids is not None:
        return [sources.camera_number(p, c) for p, c in zip(emb.paths, emb.camids)]
    return [sources.parse_camera(p) for p in emb.paths]


def person_ids_of(emb):
    """The person id of each row of `Embeddings` (None where unknown)."""
    from sal_tf.inference import sources

    if emb.pids is not None:
        return [int(p) for p in emb.pids]
    return [None if ids is None else ids[0] for ids in map(sources.parse_ids, emb.paths)]


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
    cameras = cameras_of(queries)
    if FLAGS.exclude_own_camera:
        unknown = [p for p, c in zip(queries.paths, cameras) if c is None]
        if unknown:
            raise sal_app.UserError(
                f"--exclude_own_camera needs each query's camera, but {len(unknown)} query file name(s) carry "
                f"none (e.g. {os.path.basename(unknown[0])!r}; Market/Duke names such as 0002_c1s1_000451_03.jpg "
                "do): give --query_camera=N."
            )
    return cameras


def item_times(paths):
    """--timestamp for each item: its file's mtime, none, or one given time."""
    mode = FLAGS.timestamp.strip().lower()
    if mode == "none":
        return [None] * len(paths)
    if mode == "mtime":
        return [os.path.getmtime(p) if os.path.isfile(p) else None for p in paths]
    value = parse_time(FLAGS.timestamp, "timestamp")
    return [value] * len(paths)


def item_ids(paths):
    """--ids for each item: its absolute path, its file name, or None (a new uuid)."""
    if FLAGS.ids == "uuid":
        return [None] * len(paths)
    if FLAGS.ids == "name":
        ids = [os.path.basename(p) for p in paths]
        if len(set(ids)) != len(ids):
            raise sal_app.UserError("--ids=name: two files share a name; use --ids=path (the default).")
        return ids
    return [os.path.abspath(p) for p in paths]

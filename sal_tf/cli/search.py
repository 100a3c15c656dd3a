"""Searches a gallery: a growing gallery store (`add`, `delete`, `stats`, `query --store`), or a
faiss index folder built once (`index`, `query --index_dir`); see `sal_tf.gallery` and
`sal_tf.inference.search`.

    # a gallery store: a folder (embedded, no server), a *.db file (Milvus Lite) or http://host:19530
    python -m sal_tf.cli.search add --store=gallery_store --model=runs/market --images=gallery/
    python -m sal_tf.cli.search add --store=gallery_store --embeddings=more.npz --timestamp=2026-05-01T12:00
    python -m sal_tf.cli.search query --store=gallery_store --queries=query/ --exclude_own_camera
    python -m sal_tf.cli.search query --store=gallery_store --queries=q.jpg --cameras=2,3 \\
        --time_range=2026-05-01T08:00,2026-05-01T18:00
    python -m sal_tf.cli.search delete --store=gallery_store ID [ID ...]
    python -m sal_tf.cli.search stats --store=gallery_store

    # an index folder (exact flat, or approximate ivf for millions), built once
    python -m sal_tf.cli.search index --embeddings=gallery.npz --index_dir=gallery_index [--index=ivf]
    python -m sal_tf.cli.search query --index_dir=gi --queries=photos/ --picture=ranks.png --format=jsonl

Gallery / queries are embeddings `.npz` files (from `sal_tf.cli.embed`) or images (a folder, a glob or
a CSV) embedded with --model (for queries, default: the model recorded in the index or the store's
`stats`). Cameras are numbered as in the file names (`0002_c1s1_...jpg` is camera 1) or as a CSV
gives them. Distances are Euclidean on unit vectors, sqrt(2 − 2·cos), as evaluation (or
--distance=cosine, 1 − cos, for a new index or store).
"""

import datetime
import json
import os

from absl import flags

from sal_tf.utils import app as sal_app

COMMANDS = ("index", "query", "add", "delete", "stats")
ID_KINDS = ("path", "name", "uuid")
MODEL_FILE = "model.json"  # a store folder's note of the model its embeddings came from
FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    from sal_tf.inference.search import DISTANCES, INDEX_KINDS

    flags.DEFINE_string(
        "store", None, "add / delete / stats / query: the gallery store: a folder (embedded), a *.db file "
        "(Milvus Lite) or a Milvus URI http://host:19530. `add` creates it."
    )  # fmt: skip
    flags.DEFINE_string(
        "index_dir", None, "index / query: folder of a faiss index (index.faiss, gallery.npz, index.json)."
    )
    flags.DEFINE_string("embeddings", None, "index / add: the gallery's embeddings .npz (from sal_tf.cli.embed).")
    flags.DEFINE_string("images", None, "index / add: gallery images (folder, glob or CSV) to embed with --model.")
    flags.DEFINE_string("queries", None, "query: an embeddings .npz, or images (folder, glob, CSV) to embed.")
    flags.DEFINE_string(
        "model", None, "Model for images (model_dir, .keras or SavedModel); query default: the index's or store's."
    )
    flags.DEFINE_enum(
        "index",
        "flat",
        list(INDEX_KINDS),
        "index: flat = exact inner product; ivf = approximate (IVF cells, PQ fast-scan, exact re-scoring) for "
        "galleries past a million; ivf_flat = IVF cells scanned as float vectors.",
    )
    flags.DEFINE_integer("nlist", None, "index --index=ivf*: number of cells (default: by gallery size and width).")
    flags.DEFINE_integer("nprobe", None, "IVF cells scanned per query (index default: by nlist; query overrides).")
    flags.DEFINE_enum("distance", "euclidean", list(DISTANCES), "index / a new store: reported distance convention.")
    flags.DEFINE_string(
        "timestamp", "mtime", "add: the items' time: `mtime` (each file's modification time), `none`, unix "
        "seconds or an ISO date-time (UTC unless it names a zone)."
    )  # fmt: skip
    flags.DEFINE_integer("camera", None, "add: the camera of every item (default: from Market/Duke file names).")
    flags.DEFINE_enum(
        "ids", "path", list(ID_KINDS), "add: item ids: path = the absolute file path (adding a file again "
        "replaces it), name = the file name, uuid = new random ids."
    )  # fmt: skip
    flags.DEFINE_integer("k", 10, "query: matches per query.")
    flags.DEFINE_bool(
        "exclude_own_camera", False, "query: leave out gallery items of the query's own camera (from its file "
        "name, the .npz camids or --query_camera), and items of unknown camera."
    )  # fmt: skip
    flags.DEFINE_integer("query_camera", None, "query: the queries' camera, for --exclude_own_camera.")
    flags.DEFINE_list("cameras", None, "query: only gallery items of these cameras, e.g. 1,3 or c1,c3.")
    flags.DEFINE_string(
        "time_range", None, "query --store: only items seen in T0,T1 (inclusive; unix seconds or ISO date-times)."
    )
    flags.DEFINE_bool("rerank", False, "query --index_dir: k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3).")
    flags.DEFINE_integer("max_rerank", 20000, "query: refuse --rerank above this many queries + gallery items.")
    flags.DEFINE_enum("format", "table", ["table", "jsonl"], "query: printed output.")
    flags.DEFINE_string("output", None, "query: also write the results as JSON lines to this file.")
    flags.DEFINE_string("picture", None, "query: write the rank lists of the first queries to this PNG.")
    flags.DEFINE_integer("picture_queries", 4, "query: queries drawn in --picture.")
    flags.DEFINE_integer("batch_size", 32, "Images per model call when embedding.")
    flags.DEFINE_bool("flip", False, "Flip-average when embedding images.")
    flags.DEFINE_bool("overwrite", False, "index: replace an existing index in --index_dir.")
    flags.DEFINE_bool("progress", True, "Show a progress bar while embedding.")


# --- shared helpers ---------------------------------------------------------------------------


def _embeddings(spec, model, what):
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


def _cameras_of(emb):
    """The camera of each row of `Embeddings` as a person numbers it (None where unknown)."""
    from sal_tf.inference import sources

    if emb.camids is not None:
        return [sources.camera_number(p, c) for p, c in zip(emb.paths, emb.camids)]
    return [sources.parse_camera(p) for p in emb.paths]


def _pids_of(emb):
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


def _camera_list():
    if not FLAGS.cameras:
        return None
    cameras = []
    for text in FLAGS.cameras:
        value = text.strip().lower().removeprefix("c")
        if not value.lstrip("-").isdigit():
            raise sal_app.UserError(f"--cameras must list camera numbers, e.g. 1,3 or c1,c3. Received: {text!r}")
        cameras.append(int(value))
    return cameras


def _time_range():
    if not FLAGS.time_range:
        return None
    parts = FLAGS.time_range.split(",")
    if len(parts) != 2:
        raise sal_app.UserError(f"--time_range must be T0,T1 (two times). Received: {FLAGS.time_range!r}")
    t0, t1 = (parse_time(p, "time_range") for p in parts)
    if t0 > t1:
        raise sal_app.UserError(f"--time_range: the start {parts[0]!r} is after the end {parts[1]!r}.")
    return t0, t1


def _query_cameras(queries):
    """Each query's camera for --exclude_own_camera (UserError naming a query whose camera is unknown)."""
    if FLAGS.query_camera is not None:
        return [FLAGS.query_camera] * len(queries.paths)
    cameras = _cameras_of(queries)
    if FLAGS.exclude_own_camera:
        unknown = [p for p, c in zip(queries.paths, cameras) if c is None]
        if unknown:
            raise sal_app.UserError(
                f"--exclude_own_camera needs each query's camera, but {len(unknown)} query file name(s) carry "
                f"none (e.g. {os.path.basename(unknown[0])!r}; Market/Duke names such as 0002_c1s1_000451_03.jpg "
                "do): give --query_camera=N."
            )
    return cameras


def _print_results(results, distance):
    from sal_tf.inference import search as search_lib

    if FLAGS.format == "jsonl":
        for entry in results:
            print(json.dumps(entry))
    else:
        print(search_lib.format_table(results, distance))
    if FLAGS.output:
        search_lib.write_jsonl(FLAGS.output, results)
    if FLAGS.picture:
        from sal_tf.inference import pictures

        pictures.search_picture(results, FLAGS.picture, max_queries=FLAGS.picture_queries)
        print(f"Wrote the rank lists of {min(len(results), FLAGS.picture_queries)} queries to {FLAGS.picture}")


def _check_k():
    from sal_tf.gallery import MAX_K

    if not 1 <= FLAGS.k <= MAX_K:
        raise sal_app.UserError(f"--k must be in [1, {MAX_K}]. Received: {FLAGS.k}")


# --- index folders ----------------------------------------------------------------------------


def build_index():
    from sal_tf.inference.search import GalleryIndex

    if bool(FLAGS.embeddings) == bool(FLAGS.images):
        raise sal_app.UserError("index: give exactly one of --embeddings=FILE.npz or --images=... with --model.")
    gallery = _embeddings(FLAGS.embeddings or FLAGS.images, FLAGS.model, "--images")
    index = GalleryIndex.build(
        gallery.embeddings,
        gallery.paths,
        gallery.pids,
        gallery.camids,
        kind=FLAGS.index,
        nlist=FLAGS.nlist,
        nprobe=FLAGS.nprobe,
        distance=FLAGS.distance,
        source=FLAGS.embeddings or FLAGS.images,
        model=gallery.model,
    )
    index.save(FLAGS.index_dir, overwrite=FLAGS.overwrite)
    print(f"Indexed {len(index)} gallery embeddings ({index.info['dim']}-d, {index.info['kind']}) -> {FLAGS.index_dir}")


def _query_index():
    import numpy as np

    from sal_tf.inference import search as search_lib

    if FLAGS.time_range:
        raise sal_app.UserError("--time_range needs a gallery store (--store): an index folder holds no timestamps.")
    index = search_lib.GalleryIndex.load(FLAGS.index_dir)
    queries = _embeddings(FLAGS.queries, FLAGS.model or index.info.get("model"), "--queries")
    query_cameras = _query_cameras(queries)
    cameras = _camera_list()
    filtered = FLAGS.exclude_own_camera or cameras is not None
    if filtered and FLAGS.rerank:
        raise sal_app.UserError("--rerank ranks the whole gallery: it cannot be combined with camera filters.")
    gallery_cameras = index.user_cameras() if filtered else None
    if filtered and gallery_cameras is None:
        raise sal_app.UserError(
            f"Camera filters need the gallery's cameras, and the index {FLAGS.index_dir!r} has none (its file "
            "names did not all parse); add the gallery to a --store with --camera, or use a CSV."
        )
    if FLAGS.rerank:
        dist, rows = index.search_reranked(queries.embeddings, FLAGS.k, max_items=FLAGS.max_rerank)
    elif not filtered:
        dist, rows = index.search(queries.embeddings, FLAGS.k, nprobe=FLAGS.nprobe)
    else:
        keep_all = np.ones(len(index), bool) if cameras is None else np.isin(gallery_cameras, cameras)
        k = min(FLAGS.k, len(index))
        dist = np.full((len(queries.paths), k), np.inf, np.float32)
        rows = np.full((len(queries.paths), k), -1, np.int64)
        own = query_cameras if FLAGS.exclude_own_camera else [None] * len(queries.paths)
        for camera in set(own):  # one filtered search per query camera
            which = np.array([c == camera for c in own])
            keep = keep_all if camera is None else keep_all & (gallery_cameras != camera)
            dist[which], rows[which] = index.search(queries.embeddings[which], k, FLAGS.nprobe, keep=keep)
    results = index.results(rows, dist, queries.paths, queries.pids, query_cameras)
    _print_results(results, "re-ranked" if FLAGS.rerank else index.distance)


# --- gallery stores ---------------------------------------------------------------------------


def _open_store(dim=None):
    from sal_tf.gallery import StoreLockedError, open_store

    try:
        return open_store(FLAGS.store, dim=dim, distance=FLAGS.distance)
    except FileNotFoundError:
        raise sal_app.UserError(
            f"--store {FLAGS.store!r} holds no gallery store; create one with `add` (see --help)."
        ) from None
    except (StoreLockedError, ConnectionError, ImportError) as e:
        raise sal_app.UserError(str(e)) from None


def _model_note(store):
    """Path of the note of the store's model: inside a store folder, beside a Milvus Lite file; else None."""
    if store.kind == "faiss":
        return os.path.join(store.location, MODEL_FILE)
    if "://" not in store.location:
        return store.location + "." + MODEL_FILE
    return None


def _stored_model(store):
    note = _model_note(store)
    if note and os.path.isfile(note):
        with open(note) as f:
            return json.load(f).get("model")
    return None


def _timestamps(paths):
    mode = FLAGS.timestamp.strip().lower()
    if mode == "none":
        return [None] * len(paths)
    if mode == "mtime":
        return [os.path.getmtime(p) if os.path.isfile(p) else None for p in paths]
    value = parse_time(FLAGS.timestamp, "timestamp")
    return [value] * len(paths)


def _ids(paths):
    if FLAGS.ids == "uuid":
        return [None] * len(paths)
    if FLAGS.ids == "name":
        ids = [os.path.basename(p) for p in paths]
        if len(set(ids)) != len(ids):
            raise sal_app.UserError("--ids=name: two files share a name; use --ids=path (the default).")
        return ids
    return [os.path.abspath(p) for p in paths]


def add_to_store():
    from sal_tf.gallery import Item
    from sal_tf.utils import write_json

    if bool(FLAGS.embeddings) == bool(FLAGS.images):
        raise sal_app.UserError("add: give exactly one of --embeddings=FILE.npz or --images=... with --model.")
    gallery = _embeddings(FLAGS.embeddings or FLAGS.images, FLAGS.model, "--images")
    if len(gallery.paths) == 0:
        raise sal_app.UserError("add: nothing to add (no embeddings).")
    cameras = [FLAGS.camera] * len(gallery.paths) if FLAGS.camera is not None else _cameras_of(gallery)
    items = [
        Item(id=i, camera=c, timestamp=t, path=os.path.abspath(p), person_id=pid)
        for i, c, t, p, pid in zip(
            _ids(gallery.paths), cameras, _timestamps(gallery.paths), gallery.paths, _pids_of(gallery)
        )
    ]
    with _open_store(dim=gallery.embeddings.shape[1]) as store:
        before = store.count()
        ids = store.add(gallery.embeddings, items)
        note = _model_note(store)
        if note and gallery.model and not os.path.exists(note):
            write_json(
                note, {"model": os.path.abspath(gallery.model) if os.path.exists(gallery.model) else gallery.model}
            )
        replaced = before + len(ids) - store.count()
        known = sum(c is not None for c in cameras)
        print(
            f"Added {len(ids)} item(s) to {store.location} ({store.kind}, {store.dim}-d"
            f"{f', {replaced} replaced' if replaced else ''}); it holds {store.count()}. "
            f"Cameras known for {known}/{len(ids)}."
        )


def delete_from_store(ids):
    if not ids:
        raise sal_app.UserError("delete: give the ids to delete after the command: delete --store=S ID [ID ...]")
    with _open_store() as store:
        unknown = [i for i in ids if not store.delete(i)]
        print(f"Deleted {len(ids) - len(unknown)} item(s) from {store.location}; it holds {store.count()}.")
    if unknown:
        raise sal_app.UserError(
            f"no item with id {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )


def store_stats():
    with _open_store() as store:
        stats = store.stats()
        model = _stored_model(store)
    if model:
        stats["model"] = model
    print(json.dumps(stats, indent=2, sort_keys=True))


def _query_store():
    if FLAGS.rerank:
        raise sal_app.UserError("--rerank works on an --index_dir; a store answers exact top-k with filters.")
    store = _open_store()
    with store:
        queries = _embeddings(FLAGS.queries, FLAGS.model or _stored_model(store), "--queries")
        query_cameras = _query_cameras(queries)
        cameras, time_range = _camera_list(), _time_range()
        own = query_cameras if FLAGS.exclude_own_camera else [None] * len(queries.paths)
        hits = [None] * len(queries.paths)
        for camera in set(own):  # one search per query camera
            rows = [i for i, c in enumerate(own) if c == camera]
            found = store.search(
                queries.embeddings[rows], FLAGS.k, exclude_camera=camera, cameras=cameras, time_range=time_range
            )
            for i, h in zip(rows, found):
                hits[i] = h
    query_pids = _pids_of(queries)
    results = []
    for i, found in enumerate(hits):
        entry = {"query": queries.paths[i], "results": []}
        if query_pids[i] is not None:
            entry["query_pid"] = query_pids[i]
        if query_cameras[i] is not None:
            entry["query_camera"] = query_cameras[i]
        for rank, h in enumerate(found, start=1):
            hit = {"rank": rank, "id": h.id, "path": h.path, "distance": round(h.distance, 6), "camera": h.camera}
            hit.update(timestamp=h.timestamp, pid=h.person_id)
            if query_pids[i] is not None and h.person_id is not None:
                hit["match"] = h.person_id == query_pids[i]
            entry["results"].append(hit)
        results.append(entry)
    _print_results(results, store.distance)


def run_queries():
    if not FLAGS.queries:
        raise sal_app.UserError("query: --queries is required (an embeddings .npz, or images with --model).")
    _check_k()
    if FLAGS.query_camera is not None and not FLAGS.exclude_own_camera:
        raise sal_app.UserError("--query_camera is used by --exclude_own_camera; pass that too.")
    if FLAGS.store:
        _query_store()
    else:
        _query_index()


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise sal_app.UserError(f"Give one command, one of {', '.join(COMMANDS)} (see --help). Received: {argv[1:]}")
    command, rest = argv[1], argv[2:]
    if rest and command != "delete":
        raise sal_app.UserError(f"{command}: unexpected arguments {rest}: every option is a --flag=value (see --help).")
    if command in ("add", "delete", "stats"):
        if not FLAGS.store:
            raise sal_app.UserError(f"{command}: --store is required (a folder, a *.db file or a Milvus URI).")
        if FLAGS.index_dir:
            raise sal_app.UserError(f"{command} works on a --store; --index_dir folders are built by `index`.")
        {"add": add_to_store, "stats": store_stats}.get(command, lambda: delete_from_store(rest))()
        return
    if command == "index":
        if FLAGS.store:
            raise sal_app.UserError("index builds an --index_dir folder; to fill a --store use `add`.")
        sal_app.require_flags("index_dir")
        build_index()
        return
    if bool(FLAGS.store) == bool(FLAGS.index_dir):
        raise sal_app.UserError(
            "query: give exactly one of --store (a gallery store) or --index_dir (an index folder)."
        )
    run_queries()


def needs_tensorflow(argv):
    """Whether a command line embeds images or draws a picture (else it starts without TensorFlow)."""
    values = {}
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in ("--images", "--queries", "--picture"):
            values[name] = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
    queries = values.get("--queries")
    return "--images" in values or "--picture" in values or (queries is not None and not queries.endswith(".npz"))


def run():
    """Console-script entry point."""
    define_flags()
    sal_app.run(main, needs_tensorflow=needs_tensorflow)


if __name__ == "__main__":
    run()

"""`sal-search query`: top-k of each query in a store (--store) or an index folder (--index_dir),
with the same filters: one search per query camera for --exclude_own_camera."""

from absl import flags

from sal_tf.cli.search import inputs, output, stores
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def by_query_camera(search, queries, own_cameras):
    """Each query's hits, one `search(rows, exclude_camera)` per distinct camera in `own_cameras`
    (None: no camera left out)."""
    hits = [None] * len(queries.paths)
    for camera in set(own_cameras):
        rows = [i for i, c in enumerate(own_cameras) if c == camera]
        for i, found in zip(rows, search(queries.embeddings[rows], camera)):
            hits[i] = found
    return hits


def run():
    from sal_tf.gallery import MAX_K

    if not FLAGS.queries:
        raise sal_app.UserError("query: --queries is required (an embeddings .npz, or images with --model).")
    if not 1 <= FLAGS.k <= MAX_K:
        raise sal_app.UserError(f"--k must be in [1, {MAX_K}]. Received: {FLAGS.k}")
    if FLAGS.query_camera is not None and not FLAGS.exclude_own_camera:
        raise sal_app.UserError("--query_camera is used by --exclude_own_camera; pass that too.")
    if FLAGS.store:
        _query_store()
    else:
        _query_index()


def _show(hits, queries, query_cameras, distance):
    person_ids = [item.person_id for item in inputs.file_items(queries)]
    results = output.entries(hits, queries.paths, person_ids, query_cameras)
    output.show(results, distance)


def _own_cameras(query_cameras):
    return query_cameras if FLAGS.exclude_own_camera else [None] * len(query_cameras)


def _query_store():
    if FLAGS.rerank:
        raise sal_app.UserError("--rerank works on an --index_dir; a store answers exact top-k with filters.")
    with stores.open_store() as store:
        queries = inputs.embeddings(FLAGS.queries, FLAGS.model or store.model, "--queries")
        query_cameras = inputs.query_cameras(queries)
        cameras, time_range = inputs.camera_list(), inputs.time_range()

        def search(rows, camera):
            return store.search(rows, FLAGS.k, exclude_camera=camera, cameras=cameras, time_range=time_range)

        hits = by_query_camera(search, queries, _own_cameras(query_cameras))
    _show(hits, queries, query_cameras, store.distance)


def _query_index():
    from sal_tf.gallery.faiss_index import GalleryIndex

    if FLAGS.time_range:
        raise sal_app.UserError("--time_range needs a gallery store (--store): an index folder holds no timestamps.")
    index = GalleryIndex.load(FLAGS.index_dir)
    queries = inputs.embeddings(FLAGS.queries, FLAGS.model or index.info.get("model"), "--queries")
    query_cameras = inputs.query_cameras(queries)
    cameras = inputs.camera_list()
    filtered = FLAGS.exclude_own_camera or cameras is not None
    if filtered and FLAGS.rerank:
        raise sal_app.UserError("--rerank ranks the whole gallery: it cannot be combined with camera filters.")
    if filtered and index.user_cameras() is None:
        raise sal_app.UserError(
            f"Camera filters need the gallery's cameras, and the index {FLAGS.index_dir!r} has none (its file "
            "names did not all parse); add the gallery to a --store with --camera, or use a CSV."
        )
    if FLAGS.rerank:
        dist, rows = index.search_reranked(queries.embeddings, FLAGS.k, max_items=FLAGS.max_rerank)
        hits = index.hits(rows, dist)
    else:

        def search(rows, camera):
            return index.search_hits(rows, FLAGS.k, exclude_camera=camera, cameras=cameras, nprobe=FLAGS.nprobe)

        hits = by_query_camera(search, queries, _own_cameras(query_cameras))
    _show(hits, queries, query_cameras, "re-ranked" if FLAGS.rerank else index.distance)

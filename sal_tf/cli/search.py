"""Searches a gallery with faiss: `index` a gallery once, then `query` it (see `sal_tf.inference.search`).

    python -m sal_tf.cli.search index --embeddings=gallery.npz --index_dir=gallery_index
    python -m sal_tf.cli.search index --model=runs/market --images=gallery/ --index_dir=gi [--index=ivf]
    python -m sal_tf.cli.search query --index_dir=gi --queries=query.npz --k=10 [--rerank]
    python -m sal_tf.cli.search query --index_dir=gi --queries=photos/ --picture=ranks.png --format=jsonl

Gallery / queries are embeddings `.npz` files (from `sal_tf.cli.embed`) or images (a folder, a glob or
a CSV) embedded with --model (for queries, default: the model recorded in the index). Distances are
Euclidean on unit vectors, sqrt(2 − 2·cos), as evaluation (or --distance=cosine, 1 − cos, at index
time). --rerank applies k-reciprocal re-ranking for galleries up to --max_rerank items.
"""

import json

from absl import flags

from sal_tf.utils import app as sal_app

COMMANDS = ("index", "query")
FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    flags.DEFINE_string("index_dir", None, "Folder of the index (index.faiss, gallery.npz, index.json).")
    flags.DEFINE_string("embeddings", None, "index: the gallery's embeddings .npz (from sal_tf.cli.embed).")
    flags.DEFINE_string("images", None, "index: gallery images (folder, glob or CSV) to embed with --model.")
    flags.DEFINE_string("queries", None, "query: an embeddings .npz, or images (folder, glob, CSV) to embed.")
    flags.DEFINE_string(
        "model", None, "Model for images (model_dir, .keras or SavedModel); query default: the index's."
    )
    flags.DEFINE_enum(
        "index",
        "flat",
        ["flat", "ivf", "ivf_flat"],
        "index: flat = exact inner product; ivf = approximate (IVF cells, PQ fast-scan, exact re-scoring) for "
        "galleries past a million; ivf_flat = IVF cells scanned as float vectors.",
    )
    flags.DEFINE_integer("nlist", None, "index --index=ivf*: number of cells (default ~sqrt(gallery size)).")
    flags.DEFINE_integer("nprobe", None, "IVF cells scanned per query (index default 64; query overrides).")
    flags.DEFINE_enum("distance", "euclidean", ["euclidean", "cosine"], "index: reported distance convention.")
    flags.DEFINE_integer("k", 10, "query: matches per query.")
    flags.DEFINE_bool("rerank", False, "query: k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3).")
    flags.DEFINE_integer("max_rerank", 20000, "query: refuse --rerank above this many queries + gallery items.")
    flags.DEFINE_enum("format", "table", ["table", "jsonl"], "query: printed output.")
    flags.DEFINE_string("output", None, "query: also write the results as JSON lines to this file.")
    flags.DEFINE_string("picture", None, "query: write the rank lists of the first queries to this PNG.")
    flags.DEFINE_integer("picture_queries", 4, "query: queries drawn in --picture.")
    flags.DEFINE_integer("batch_size", 32, "Images per model call when embedding.")
    flags.DEFINE_bool("flip", False, "Flip-average when embedding images.")
    flags.DEFINE_bool("overwrite", False, "index: replace an existing index in --index_dir.")
    flags.DEFINE_bool("progress", True, "Show a progress bar while embedding.")


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
    print(f"Indexed {len(index)} gallery embeddings ({index.info['dim']}-d, {FLAGS.index}) -> {FLAGS.index_dir}")


def run_queries():
    from sal_tf.inference import pictures
    from sal_tf.inference import search as search_lib

    if not FLAGS.queries:
        raise sal_app.UserError("query: --queries is required (an embeddings .npz, or images with --model).")
    if FLAGS.k < 1:
        raise sal_app.UserError(f"--k must be >= 1. Received: {FLAGS.k}")
    index = search_lib.GalleryIndex.load(FLAGS.index_dir)
    queries = _embeddings(FLAGS.queries, FLAGS.model or index.info.get("model"), "--queries")
    if FLAGS.rerank:
        dist, rows = index.search_reranked(queries.embeddings, FLAGS.k, max_items=FLAGS.max_rerank)
    else:
        dist, rows = index.search(queries.embeddings, FLAGS.k, nprobe=FLAGS.nprobe)
    results = index.results(rows, dist, queries.paths, queries.pids)
    if FLAGS.format == "jsonl":
        for entry in results:
            print(json.dumps(entry))
    else:
        print(search_lib.format_table(results, "re-ranked" if FLAGS.rerank else index.distance))
    if FLAGS.output:
        search_lib.write_jsonl(FLAGS.output, results)
    if FLAGS.picture:
        pictures.search_picture(results, FLAGS.picture, max_queries=FLAGS.picture_queries)


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise sal_app.UserError(f"Give one command, `index` or `query` (see --helpfull). Received: {argv[1:]}")
    if not FLAGS.index_dir:
        raise sal_app.UserError("--index_dir is required.")
    if argv[1] == "index":
        build_index()
    else:
        run_queries()


def run():
    """Console-script entry point."""
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

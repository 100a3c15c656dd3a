"""`sal-search`: searches a gallery: a growing gallery store (`add`, `delete`, `stats`, `repair`,
`query --store`), or a faiss index folder built once (`index`, `query --index_dir`); see
`sal_tf.gallery`.

    # a gallery store: a folder (embedded, no server), a *.db file (Milvus Lite) or http://host:19530
    sal-search add --store=gallery_store --model=runs/market --images=gallery/
    sal-search add --store=gallery_store --embeddings=more.npz --timestamp=2026-05-01T12:00
    sal-search query --store=gallery_store --queries=query/ --exclude_own_camera
    sal-search query --store=gallery_store --queries=q.jpg --cameras=2,3 \\
        --time_range=2026-05-01T08:00,2026-05-01T18:00
    sal-search delete --store=gallery_store ID [ID ...]
    sal-search stats --store=gallery_store
    sal-search repair --store=gallery_store     # a folder store whose log is damaged: keep every intact record

    # an index folder (exact flat, or approximate ivf for millions), built once
    sal-search index --embeddings=gallery.npz --index_dir=gallery_index [--index=ivf]
    sal-search query --index_dir=gi --queries=photos/ --picture=ranks.png --format=jsonl

Gallery / queries are embeddings `.npz` files (from `sal-embed`) or images (a folder, a glob or
a CSV) embedded with --model (for queries, default: the model recorded in the index or the store).
Cameras are numbered as in the file names (`0002_c1s1_...jpg` is camera 1) or as a CSV gives them.
Distances are Euclidean on unit vectors, sqrt(2 − 2·cos), as evaluation (or --distance=cosine,
1 − cos, for a new index or store). Results: `output.py` (each hit in the one JSON form of
`sal_tf.gallery.Hit`).

Modules: `inputs` (what the flags give), `stores` (add / delete / stats / repair), `index_folders`
(index), `queries` (query), `output` (tables, JSON lines, pictures).
"""

from absl import flags

from sal_tf.utils import app as sal_app

COMMANDS = ("index", "query", "add", "delete", "stats", "repair")
STORE_COMMANDS = ("add", "delete", "stats", "repair")
ID_KINDS = ("path", "name", "uuid")
FLAGS = flags.FLAGS


# Over 60 lines: one `flags.DEFINE_*` per flag of the six sub-commands, a flat list that reads as the
# command's reference (each help text says which sub-commands use it).
def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    from sal_tf.cli import engine
    from sal_tf.evaluation.distance import DISTANCES
    from sal_tf.gallery.ann_index import KINDS as STORE_INDEX_KINDS
    from sal_tf.gallery.faiss_index import INDEX_KINDS

    flags.DEFINE_string(
        "store", None, "add / delete / stats / repair / query: the gallery store: a folder (embedded), a *.db file "
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
        None,
        list(dict.fromkeys([*INDEX_KINDS, *STORE_INDEX_KINDS])),
        "index (default flat): flat = exact inner product; ivf = approximate (IVF cells, PQ fast-scan, exact "
        "re-scoring) for galleries past a million; ivf_flat = IVF cells scanned as float vectors. "
        "--store (default: what the store was given before, else auto): auto = exact below 50 k items, hnsw "
        "above; flat; hnsw; ivf (IVF-PQ, exact re-scoring); Milvus: also a Milvus index type.",
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
    flags.DEFINE_bool("overwrite", False, "index: replace an existing index in --index_dir.")
    engine.define_flags()
    flags.adopt_module_key_flags(engine)  # --help lists the embedding flags with this command's own


def main(argv):
    from sal_tf.cli.search import index_folders, queries, stores

    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise sal_app.UserError(f"Give one command, one of {', '.join(COMMANDS)} (see --help). Received: {argv[1:]}")
    command, rest = argv[1], argv[2:]
    if rest and command != "delete":
        raise sal_app.UserError(f"{command}: unexpected arguments {rest}: every option is a --flag=value (see --help).")
    if command in STORE_COMMANDS:
        if not FLAGS.store:
            raise sal_app.UserError(f"{command}: --store is required (a folder, a *.db file or a Milvus URI).")
        if FLAGS.index_dir:
            raise sal_app.UserError(f"{command} works on a --store; --index_dir folders are built by `index`.")
        commands = {"add": stores.add, "stats": stores.stats, "repair": stores.repair}
        commands.get(command, lambda: stores.delete(rest))()
        return
    if command == "index":
        if FLAGS.store:
            raise sal_app.UserError("index builds an --index_dir folder; to fill a --store use `add`.")
        sal_app.require_flags("index_dir")
        index_folders.build()
        return
    if bool(FLAGS.store) == bool(FLAGS.index_dir):
        raise sal_app.UserError(
            "query: give exactly one of --store (a gallery store) or --index_dir (an index folder)."
        )
    queries.run()


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

"""Runs the person-search service: an HTTP API and a web page over a gallery store and a model.

    sal-serve --model=runs/demo --store=demo_gallery --index_images=~/.cache/sal_tf/demo/demo_market_v1_seed0/bounding_box_test
    sal-serve --tf_serving=http://localhost:8501/v1/models/sal --store=gallery.db --api_key=...
    python -m sal_tf.cli.serve --help

--model: a training --model_dir, a .keras file, an exported SavedModel folder, an .onnx or .tflite
file (or --tf_serving: a TF Serving REST model URL). --store: a folder (the embedded store,
created when missing), a *.db file (Milvus Lite) or http://host:19530 (a Milvus server).
Listens on 127.0.0.1 unless --host says otherwise;
with --api_key (or $SAL_SERVE_API_KEY) every /v1 route wants `Authorization: Bearer <key>`, and
without one any --host beyond loopback is refused unless --insecure_no_key.
The routes and errors: BUILD.md "Search service".
"""

import dataclasses
import os

from absl import flags

from sal_tf.cli import runtime_flags
from sal_tf.serve.settings import API_KEY_ENV, ServeSettings
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def _default(name):
    """The `ServeSettings` default of `name` (the one home of the service's defaults)."""
    return {f.name: f.default for f in dataclasses.fields(ServeSettings)}[name]


def define_flags():
    """Defines this command's flags (called by `run`, never at import); defaults come from `ServeSettings`."""
    flags.DEFINE_string(
        "model", None, "A training --model_dir, a .keras file, an exported SavedModel folder, an .onnx or .tflite file."
    )
    runtime_flags.define_runtime_flags()
    flags.DEFINE_string(
        "tf_serving", None, "Instead of --model: a TF Serving REST model URL, http://host:8501/v1/models/sal."
    )
    flags.DEFINE_string(
        "store", None, "Gallery store: a folder (faiss), a *.db file (Milvus Lite) or http://host:19530."
    )
    flags.DEFINE_string("data_dir", None, "Folder of the stored crops (default: <store>.crops next to the store).")
    flags.DEFINE_enum("distance", _default("distance"), ["euclidean", "cosine"], "Distance of a new store.")
    flags.DEFINE_string(
        "index", None, "The store's search index: auto, flat, hnsw, ivf (Milvus: or an index type, e.g. IVF_PQ); "
        "default: what the store was given before, else auto (exact below 50 k items)."
    )  # fmt: skip
    flags.DEFINE_string(
        "index_images", None, "Folder / glob / CSV of images indexed at start-up when the store is empty."
    )
    flags.DEFINE_string(
        "calibration", None, "The model's calibration JSON (sal-evaluate's output, results.json) for each hit's "
        "same_person; default: the one beside --model; none: same_person is null."
    )  # fmt: skip
    flags.DEFINE_string(
        "paths_root", None, "Serve an item's path as its crop when the service stored none, for files inside this "
        "folder only (sal-mtmc --store items: its --output_dir)."
    )  # fmt: skip
    flags.DEFINE_string("host", _default("host"), "Address to listen on (0.0.0.0: every interface).")
    flags.DEFINE_integer("port", _default("port"), "Port to listen on (0: a free one, printed).")
    flags.DEFINE_string("api_key", None, f"API key wanted on every /v1 route (default: ${API_KEY_ENV}; none: open).")
    flags.DEFINE_bool(
        "insecure_no_key",
        False,
        "Without --api_key, listen beyond loopback anyway: anyone who reaches the port may add, delete and read.",
    )
    flags.DEFINE_list("allowed_hosts", [], "Host header values answered (default: from --host; 0.0.0.0: any).")
    flags.DEFINE_list("cors_origins", [], "Origins allowed by CORS (default: none, no CORS headers).")
    flags.DEFINE_integer("max_k", _default("max_k"), "Largest k a search may ask for.")
    flags.DEFINE_integer("max_items", _default("max_items"), "Most items per POST /v1/gallery.")
    flags.DEFINE_float("max_upload_mb", _default("max_upload_mb"), "Largest request body, MiB (413 above).")
    flags.DEFINE_integer(
        "max_image_pixels", _default("max_image_pixels"), "Most pixels of an uploaded image, read from its header."
    )
    flags.DEFINE_float(
        "request_timeout_s", _default("request_timeout_s"), "Seconds to send a request's headers and body."
    )
    flags.DEFINE_integer("max_connections", _default("max_connections"), "Requests in flight before 503.")
    flags.DEFINE_integer("batch_size", _default("max_embedding_batch"), "Images per model call when indexing.")
    flags.DEFINE_bool("progress", _default("progress"), "Show indexing progress on stderr.")


def settings_from_flags():
    return ServeSettings(
        model=FLAGS.model,
        threads=FLAGS.threads,
        precision=FLAGS.precision,
        tf_serving=FLAGS.tf_serving,
        store=FLAGS.store,
        data_dir=FLAGS.data_dir,
        distance=FLAGS.distance,
        index=FLAGS.index,
        index_images=FLAGS.index_images,
        calibration=FLAGS.calibration,
        paths_root=FLAGS.paths_root,
        host=FLAGS.host,
        port=FLAGS.port,
        api_key=FLAGS.api_key or os.environ.get(API_KEY_ENV) or None,
        insecure_no_key=FLAGS.insecure_no_key,
        allowed_hosts=tuple(FLAGS.allowed_hosts),
        cors_origins=tuple(FLAGS.cors_origins),
        max_k=FLAGS.max_k,
        max_items=FLAGS.max_items,
        max_upload_mb=FLAGS.max_upload_mb,
        max_image_pixels=FLAGS.max_image_pixels,
        request_timeout_s=FLAGS.request_timeout_s,
        max_connections=FLAGS.max_connections,
        max_embedding_batch=FLAGS.batch_size,
        progress=FLAGS.progress,
    )


def main(argv):
    sal_app.no_arguments(argv)
    settings = settings_from_flags()
    from sal_tf.serve.server import serve

    serve(settings)


def run():
    """Console-script entry point."""
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

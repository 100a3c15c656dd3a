"""Evaluates a trained model on a re-ID dataset: CMC / mAP / mINP (+ re-ranked), rank lists, JSON.

    python -m sal_tf.cli.evaluate --model=runs/market --dataset=dukemtmc --data_dir=/data/DukeMTMC-reID \\
        --output=eval/market_to_duke.json
    python -m sal_tf.cli.evaluate --model=exports/sal/1 --dataset=custom --data_dir=/data/my_cameras \\
        --output=eval/cams.json --flip --queries=0,17,0042_c3s1_001234_00.jpg

--model: a training --model_dir (its highest stage<N>.keras), a .keras file, an exported
SavedModel version folder, an .onnx or a .tflite file (a folder holding several: the fastest form,
printed; `sal_tf/inference/backend.py`). Whatever the model was trained on, no training configuration is needed.
Rank lists go to <output without .json>_rank_lists.png. An existing --output is kept unless --overwrite.
"""

from absl import flags

from sal_tf.cli import runtime_flags
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    from sal_tf.data import LAYOUTS

    flags.DEFINE_string("model", None, "A training --model_dir, .keras, SavedModel folder, .onnx or .tflite file.")
    runtime_flags.define_runtime_flags()
    flags.DEFINE_enum("dataset", "market1501", list(LAYOUTS),
                      "Layout of --data_dir (custom: train.csv / query.csv / gallery.csv).")  # fmt: skip
    flags.DEFINE_string("data_dir", None, "Dataset root (Market-1501 / DukeMTMC-reID folders, or the custom CSVs).")
    flags.DEFINE_string("output", None, "Where the results JSON goes (e.g. eval/market.json).")
    flags.DEFINE_bool("rerank", True, "Also report k-reciprocal re-ranked results (on the junk-free gallery).")
    flags.DEFINE_bool("flip", False, "Average each image's embedding with its mirror's.")
    flags.DEFINE_string("queries", "", "Rank lists for these queries: comma-separated indices or file names "
                        "(default: 4 spread over the query list; 'none': no picture).")  # fmt: skip
    flags.DEFINE_integer("batch_size", 128, "Images per model call.")
    flags.DEFINE_bool("drop_bad_eval_images", False, "Leave undecodable query/gallery images out (counted) "
                      "instead of stopping.")  # fmt: skip
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")
    flags.DEFINE_integer("verbose", 1, "0: quiet, 1: progress and the table, 2: also TensorFlow's start-up logs.")


def main(argv):
    sal_app.no_arguments(argv)
    sal_app.require_flags("model", "data_dir", "output")
    sal_app.check_new_output("output", ".json", FLAGS.overwrite)
    import os

    from sal_tf.data import dataset_name, load_dataset
    from sal_tf.evaluation.reid import format_results
    from sal_tf.inference.evaluate import evaluate_dataset, select_queries
    from sal_tf.inference.loading import load_embedder
    from sal_tf.utils import write_json

    embedder = load_embedder(FLAGS.model, threads=FLAGS.threads, precision=FLAGS.precision)
    if FLAGS.verbose > 0:
        print(f"Model: {embedder.describe()}")
    name = dataset_name(FLAGS.dataset)
    verbose = FLAGS.verbose > 0
    data = load_dataset(name, FLAGS.data_dir, verbose=verbose, drop_bad_eval_images=FLAGS.drop_bad_eval_images)
    queries = select_queries(FLAGS.queries, data.query)
    picture = f"{FLAGS.output[: -len('.json')]}_rank_lists.png" if queries else None
    res, _ = evaluate_dataset(embedder, data, FLAGS.rerank, FLAGS.flip, FLAGS.batch_size, queries, picture, verbose)
    out = dict(res, model=str(embedder.source), dataset=name, data_dir=os.path.abspath(FLAGS.data_dir),
               flip=FLAGS.flip, rank_list_queries=[data.query[i].path for i in queries],
               rank_lists=picture, skipped_files=data.skipped_files)  # fmt: skip
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    write_json(FLAGS.output, out)
    print(f"{embedder.source} on {name} ({len(data.query)} queries, {len(data.gallery)} gallery images):")
    print(format_results(res))
    print(f"Results: {FLAGS.output}" + (f"; rank lists: {picture}" if picture else ""))


def run():
    """Console script `sal-evaluate`."""
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

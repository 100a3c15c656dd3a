"""Exports a trained SAL model for TF Serving (and TFLite, ONNX).

    python -m export --model_dir=runs/market --export_dir=exports --name=sal [--tflite] [--onnx] [--nchw]
    python -m export --model=runs/market/stage2.keras --export_dir=exports --name=sal

Writes `<export_dir>/<name>/<version>/` (next free version; verified in a fresh
TensorFlow-only process before it is renamed into place), updates
`<export_dir>/models.config`, and with --tflite writes checked TFLite files to
`<export_dir>/tflite/<name>/<version>/`, and with --onnx a checked
`<export_dir>/onnx/<name>/<version>/model.onnx`, and with --nchw the same model taking PyTorch
re-ID input in `<export_dir>/nchw/<name>/<version>/`. Prints what it wrote as JSON.

With --tflite / --onnx and the run's data (its config.json's --dataset / --data_dir, or the flags),
the int8 TFLite file is full-integer, calibrated on --calibration_images training crops, and every
file's mAP / Rank-1 on the evaluation set is reported beside its cosine parity; a file losing more
than --max_map_drop points of the Keras model's mAP is not published (exit status 1) unless
--allow_map_drop (`sal_tf/export/accuracy.py`).
"""

import json
import os
import sys

from absl import flags

from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    flags.DEFINE_string("model_dir", None, "Training folder: exports its highest stage<N>.keras.")
    flags.DEFINE_string("model", None, "A .keras file to export instead of --model_dir.")
    flags.DEFINE_string("export_dir", None, "Root folder of the exports (holds models.config).")
    flags.DEFINE_string("name", "sal", "Model name: TF Serving name and folder <export_dir>/<name>.")
    flags.DEFINE_integer("version", None, "Write exactly this version (error if it exists); default: next one.")
    flags.DEFINE_bool(
        "verify",
        True,
        "Before publishing, run `python -m export.verify` on the new version in a fresh TensorFlow-only "
        "process (what TF Serving does); a failure publishes nothing.",
    )
    flags.DEFINE_bool("tflite", False, "Also write float32, float16 and int8 TFLite files, each parity-checked.")
    flags.DEFINE_bool(
        "onnx",
        False,
        "Also write <export_dir>/onnx/<name>/<version>/model.onnx (tf2onnx), checked with ONNX Runtime against Keras.",
    )
    flags.DEFINE_bool(
        "nchw",
        False,
        "Also write <export_dir>/nchw/<name>/<version>/model.onnx taking PyTorch re-ID input (float32 [B, 3, H, W], "
        "RGB / 255 normalised with the ImageNet mean and std), checked against the SavedModel; with --tflite "
        "also a float32 TFLite file.",
    )
    flags.DEFINE_string("dataset", None, "Dataset of the accuracy check and int8 calibration (default: the run's).")
    flags.DEFINE_string("data_dir", None, "Its root folder (default: the run's config.json data_dir).")
    flags.DEFINE_float("max_map_drop", 1.0, "Points of mAP a TFLite / ONNX file may lose against the Keras model.")
    flags.DEFINE_bool("allow_map_drop", False, "Publish a file that loses more than --max_map_drop (reported).")
    flags.DEFINE_integer("calibration_images", 200, "Training crops that calibrate the int8 TFLite file.")
    flags.DEFINE_integer(
        "accuracy_max_images",
        0,
        "Score every form on a seeded subset of at most this many query + gallery images (0: all), "
        "for a model too slow to embed the whole set once per form.",
    )
    flags.DEFINE_string("sample_images", None, "Folder of real images for the parity checks (default: synthetic).")
    flags.DEFINE_integer("num_samples", 8, "Images taken from --sample_images.")
    flags.DEFINE_string(
        "serving_base_path",
        None,
        "Base path written to models.config as the server sees it (e.g. /models/sal in docker); "
        "default: the absolute local path.",
    )


def main(argv):
    sal_app.no_arguments(argv)
    sal_app.require_flags("export_dir")
    from sal_tf.export import export_lib
    from sal_tf.export.accuracy import AccuracyDropError
    from sal_tf.inference.loading import find_model_file
    from sal_tf.models import load_model

    path = find_model_file(FLAGS.model_dir, FLAGS.model)
    model = load_model(path)
    accuracy, calibration = _accuracy_check(path, model) if FLAGS.tflite or FLAGS.onnx else (None, None)
    try:
        result = _export(export_lib, model, path, accuracy, calibration)
    except AccuracyDropError as e:
        print(json.dumps(dict(e.result, source=os.path.abspath(path)), indent=2))
        raise
    result["source"] = os.path.abspath(path)
    print(json.dumps(result, indent=2))


def _accuracy_check(path, model):
    """(`AccuracyCheck`, calibration images) from the flags or the run's config.json; (None, None) without data."""
    from sal_tf.data import dataset_name, load_dataset
    from sal_tf.export import accuracy
    from sal_tf.models.embedding import embedding_model_of

    dataset, data_dir = accuracy.run_data(FLAGS.model_dir or path)
    dataset, data_dir = FLAGS.dataset or dataset, FLAGS.data_dir or data_dir
    if dataset is None or (data_dir is None and dataset != "demo"):
        print(
            "No --dataset / --data_dir (and no run config.json): int8 uses dynamic-range weights; no mAP check.",
            file=sys.stderr,
        )
        return None, None
    data = load_dataset(dataset_name(dataset), data_dir, verbose=False)
    check = accuracy.AccuracyCheck(data, FLAGS.max_map_drop, FLAGS.allow_map_drop, max_images=FLAGS.accuracy_max_images)
    _, image_size = embedding_model_of(model)
    return check, accuracy.calibration_images(data, image_size, FLAGS.calibration_images) if FLAGS.tflite else None


def _export(export_lib, model, path, accuracy, calibration):
    return export_lib.export(
        model,
        FLAGS.export_dir,
        FLAGS.name,
        version=FLAGS.version,
        sample_images=FLAGS.sample_images,
        num_samples=FLAGS.num_samples,
        tflite_files=FLAGS.tflite,
        onnx_file=FLAGS.onnx,
        nchw_files=FLAGS.nchw,
        serving_base_path=FLAGS.serving_base_path,
        source=os.path.abspath(path),
        verify=FLAGS.verify,
        accuracy=accuracy,
        calibration=calibration,
    )


def run():
    """Console-script entry point (`python -m export`)."""
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

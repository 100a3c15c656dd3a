"""Tracks people in a video or MOTChallenge sequences with DeepSORT, SAL as its appearance model.

    sal-track --source=MOT17/train/MOT17-02-FRCNN --model=runs/market --output_dir=tracks
    sal-track --source=sequences/ --detections=gt --tracker=histogram --output_dir=tracks_hist
    sal-track --source=street.mp4 --detections=street_det.txt --model=exports/nchw/sal/1/model.onnx --output_dir=out

--source: a video file, a MOTChallenge sequence folder (seqinfo.ini, img1/, det/) or a folder of
them. --detections: "det" (det/det.txt), "gt" (oracle boxes from gt/gt.txt) or a det.txt path
(needed for a video); no detector is bundled. --tracker: sal | histogram | iou (motion only), the
same DeepSORT with another appearance model (`sal_tf/tracking/`). Writes `<output_dir>/<seq>.txt`
(MOTChallenge results), `<seq>.gif` (or --annotate=mp4 / none) and, where gt/gt.txt exists,
`metrics.json` (IDF1, MOTA, ID switches ...), printing a table.
"""

import json
import os
import sys

from absl import flags

from sal_tf.cli import runtime_flags
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    from sal_tf.utils.visibility import MIN_VISIBILITY

    flags.DEFINE_string("source", None, "A video file, a MOTChallenge sequence folder, or a folder of sequences.")
    flags.DEFINE_string("detections", "det", "det (det/det.txt), gt (oracle: gt/gt.txt boxes) or a det.txt path.")
    flags.DEFINE_enum("tracker", "sal", ["sal", "histogram", "iou"], "Appearance model of DeepSORT.")
    flags.DEFINE_string(
        "model",
        None,
        "--tracker=sal: a model_dir, .keras, SavedModel folder, .onnx or .tflite (a folder of several: the fastest).",
    )
    flags.DEFINE_string("output_dir", None, "Folder for <seq>.txt results, annotated clips and metrics.json.")
    flags.DEFINE_enum("annotate", "gif", ["gif", "mp4", "avi", "none"], "Annotated clip of each sequence.")
    flags.DEFINE_integer("max_age", None, "Frames a lost track is kept (default: per tracker, see BUILD.md).")
    flags.DEFINE_integer("n_init", None, "Detections before a track is confirmed (default: per tracker).")
    flags.DEFINE_float("max_cosine_distance", None, "Appearance gate of DeepSORT (default: per tracker).")
    flags.DEFINE_integer("nn_budget", None, "Appearance rows kept per track (default: per tracker).")
    flags.DEFINE_float("min_visibility", MIN_VISIBILITY, "Ground-truth boxes less visible are ignored.")
    flags.DEFINE_integer("batch_frames", 16, "Frames whose boxes are embedded in one model call.")
    runtime_flags.define_runtime_flags()
    flags.DEFINE_bool("evaluate", True, "Compute IDF1 / MOTA / ID switches where gt/gt.txt exists.")
    flags.DEFINE_bool("overwrite", False, "Replace existing result files in --output_dir.")
    flags.DEFINE_bool("progress", True, "Show progress on stderr.")


def _table(summary):
    keys = ("idf1", "mota", "id_switches", "fragmentations", "false_positives", "misses")
    lines = [f"{'sequence':<16}" + "".join(f"{k:>16}" for k in keys)]
    for name, m in summary.items():
        lines.append(
            f"{name:<16}" + "".join(f"{m[k]:>16.4f}" if isinstance(m[k], float) else f"{m[k]:>16}" for k in keys)
        )
    return "\n".join(lines)


def _track(source, model, settings, min_visibility):
    """Runs one sequence / video, prints its line; returns `sal_tf.tracking.run.run_sequence`'s dict."""

    from sal_tf.tracking import run as tracking
    from sal_tf.utils.progress import Progress

    progress = Progress(source.length or None, source.name, FLAGS.progress, unit="frame", stream=sys.stderr)
    clip = None if FLAGS.annotate == "none" else FLAGS.annotate
    done = tracking.run_sequence(
        source,
        model,
        settings,
        FLAGS.output_dir,
        FLAGS.detections,
        clip,
        FLAGS.evaluate,
        min_visibility=min_visibility,
        batch_frames=FLAGS.batch_frames,
        progress=progress,
    )
    progress.finish()
    seconds = done["stats"]["appearance_seconds"] + done["stats"]["association_seconds"]
    rate = done["frames"] / max(seconds, 1e-9)
    outputs = ", ".join(p for p in (done["result_file"], done["annotated"]) if p)
    print(f"{source.name}: {done['frames']} frames, {rate:.1f} frames/s (appearance + association) -> {outputs}")
    return done


def main(argv):
    sal_app.no_arguments(argv)
    sal_app.require_flags("source", "output_dir")
    from sal_tf.tracking import appearance, deepsort, metrics, mot
    from sal_tf.tracking import run as tracking

    sources = mot.open_sources(FLAGS.source)
    tracking.check_outputs(sources, FLAGS.output_dir, FLAGS.overwrite)
    model = appearance.appearance_model(FLAGS.tracker, FLAGS.model, FLAGS.threads, FLAGS.precision)
    if FLAGS.tracker == "sal":
        print(f"Appearance model: {model.encoder.backend.describe()}", file=sys.stderr)
    overrides = {k: FLAGS[k].value for k in ("max_age", "n_init", "nn_budget", "max_cosine_distance")}
    settings = deepsort.settings_for(FLAGS.tracker, **overrides)
    accumulators, report = {}, {"tracker": FLAGS.tracker, "model": FLAGS.model, "settings": vars(settings)}
    for source in sources:
        done = _track(source, model, settings, FLAGS.min_visibility)
        report.setdefault("sequences", {})[source.name] = {
            k: done[k] for k in ("frames", "result_file", "annotated", "stats")
        }
        if done["accumulator"] is not None:
            accumulators[source.name] = done["accumulator"]
    if accumulators:
        report["metrics"] = metrics.summarize(accumulators)
        print(_table(report["metrics"]))
    with open(os.path.join(FLAGS.output_dir, "metrics.json" if accumulators else "run.json"), "w") as f:
        json.dump(report, f, indent=2)


def run():
    """Console-script entry point (`sal-track`).

    One OpenBLAS thread unless the environment says otherwise, set before numpy loads: DeepSORT's
    Kalman gate solves 4×4 systems with scipy, which a multi-threaded OpenBLAS slows to several
    milliseconds per call (tens on a busy machine; BUILD.md "Tracking").
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

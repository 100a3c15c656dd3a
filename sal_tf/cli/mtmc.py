"""Follows people across cameras: several cameras' video in, one global id per person, its journey.

    sal-mtmc --source=cameras/ --model=runs/demo --output_dir=mtmc
    sal-mtmc --source=cameras/ --tracker=histogram --detections=gt --output_dir=mtmc_hist
    sal-mtmc --source=videos/ --start_times=door:2026-03-02T09:00:00,hall:2026-03-02T09:00:04 \\
        --detections=hog --model=exports/nchw/sal/1/model.onnx --transit=door:hall:2:20 --output_dir=out

--source: one camera per entry — a MOTChallenge sequence folder (`img1/`, `det/det.txt`, optional
`gt/gt.txt`, `seqinfo.ini` with `frameRate` and an optional `startTime=`), or a video file
`<camera>.mp4` (its det file, if any, `<camera>.txt` beside it; start times from --start_times).
Each camera runs DeepSORT with the appearance model (`--tracker`); its tracks become tracklets with
a pooled embedding; tracklets are linked within each camera and across cameras into global ids under
hard constraints (never two places at once, never two tracks of a camera at once, --transit windows),
at the distance the model's calibration gives for --fmr (BUILD.md "Multi-camera tracking").

Writes `<output_dir>/<camera>.txt` (MOTChallenge results, the global id in every camera),
`journeys.json` and `crops/`, `<camera>.mp4` annotated clips (--annotate), each tracklet into a gallery
store with --store (searchable with sal-search / sal-serve), and `metrics.json` with
a printed table where gt/gt.txt exists (per camera IDF1 / MOTA / ID switches; cross-camera IDF1 /
IDP / IDR; re-entries that keep their id), else `run.json`.
"""

import os
import sys

from absl import flags

from sal_tf.cli import runtime_flags
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    flags.DEFINE_string("source", None, "Folder of cameras: MOTChallenge sequence sub-folders or <camera>.mp4 files.")
    flags.DEFINE_string("output_dir", None, "Folder for <camera>.txt, journeys.json, crops/, clips, metrics.json.")
    flags.DEFINE_enum("tracker", "sal", ["sal", "histogram"], "Appearance model: SAL embeddings or colour histograms.")
    flags.DEFINE_string("model", None, "--tracker=sal: a model_dir, .keras, SavedModel folder, .onnx or .tflite.")
    flags.DEFINE_string("detections", "det", "det (det/det.txt, a video's <camera>.txt), gt (oracle), hog "
                        "(OpenCV's people detector) or the path of an .onnx detector ([N, 6] x1,y1,x2,y2,score,class).")  # fmt: skip
    flags.DEFINE_string("start_times", None, "camera:ISO_8601,... wall-clock times of frame 1 (videos; overrides "
                        "seqinfo.ini startTime).")  # fmt: skip
    flags.DEFINE_multi_string("transit", [], "A:B:MIN_S:MAX_S: walking from camera A to B (either way) takes MIN_S to "
                              "MAX_S seconds (repeatable).")  # fmt: skip
    flags.DEFINE_enum("link", "all", ["all", "camera", "none"], "Link tracklets across cameras (all), only within "
                      "each camera (camera), or not at all (none: each camera's tracks kept apart).")  # fmt: skip
    flags.DEFINE_bool("learn_transit", True, "--link=all: learn the cameras' transit times from a first clustering's "
                      "confident links and cluster again with them (sal_tf/mtmc/transit.py).")  # fmt: skip
    flags.DEFINE_bool("camera_centring", True, "Link on tracklet embeddings with each camera's mean embedding taken "
                      "out, the calibration's distances scaled to match (sal_tf/mtmc/centring.py).")  # fmt: skip
    flags.DEFINE_float("fmr", 1e-2, "False-match rate whose calibrated distance is the linking threshold.")
    flags.DEFINE_float("link_probability", 0.5, "With a calibration: link tracklets while their calibrated P(same "
                       "person) is at least this (tracks are still cut at the --fmr distance); 0: link at the --fmr "
                       "distance.")  # fmt: skip
    flags.DEFINE_float("threshold", None, "Linking threshold (cosine distance of the features linked: camera-centred "
                       "with --camera_centring), instead of the calibration's.")  # fmt: skip
    flags.DEFINE_string("calibration", None, "A calibration JSON (sal-evaluate's output, results.json); default: "
                        "the model's (its folder's results.json or calibration.json).")  # fmt: skip
    flags.DEFINE_float("relink_gap", None, "--link=camera: tracklets of a camera at most this many seconds apart "
                       "are linked (default 30).")  # fmt: skip
    flags.DEFINE_enum("annotate", "mp4", ["mp4", "avi", "gif", "none"], "Annotated clip of each camera.")
    flags.DEFINE_float("min_visibility", None, "Ground-truth boxes less visible are ignored (default 0.3).")
    flags.DEFINE_integer("batch_frames", None, "Frames whose boxes are embedded in one model call (default 16).")
    runtime_flags.define_runtime_flags()
    flags.DEFINE_string("store", None, "A gallery store (folder, *.db, Milvus URI): every tracklet is added to it "
                        "(pooled embedding; camera, start time, best crop, global id as person_id).")  # fmt: skip
    flags.DEFINE_string("store_run", None, "The run's name in the store's item ids (default: --output_dir's name).")
    flags.DEFINE_bool("overwrite", False, "Replace existing results in --output_dir.")
    flags.DEFINE_bool("progress", True, "Show progress on stderr.")


def _table(report):
    m = report["metrics"]
    lines = [f"{'camera':<14}{'idf1':>8}{'idp':>8}{'idr':>8}{'mota':>8}{'id_sw':>7}{'gt_ids':>8}"]
    for name, row in [*m["cameras"].items(), ("cross-camera", m["cross_camera"])]:
        rates = "".join("       -" if row[k] is None else f"{row[k]:>8.4f}" for k in ("idf1", "idp", "idr", "mota"))
        lines.append(f"{name:<14}{rates}{row['id_switches']:>7}{row['ground_truth_ids']:>8}")
    for kind, r in m["reentries"].items():
        share = "-" if r["share"] is None else f"{100 * r['share']:.1f} %"
        lines.append(f"re-entries ({kind.replace('_', ' ')}): {r['kept']}/{r['reentries']} keep their id ({share})")
    return "\n".join(lines)


def _options():
    from sal_tf.evaluation import calibration
    from sal_tf.mtmc import linking
    from sal_tf.mtmc.run import Options

    found = None
    if FLAGS.calibration:
        found = calibration.from_json(FLAGS.calibration)
    elif FLAGS.tracker == "sal" and FLAGS.threshold is None:
        found = calibration.find(FLAGS.model)
    if FLAGS.threshold is not None and FLAGS.threshold <= 0:
        raise ValueError(f"--threshold must be > 0; got {FLAGS.threshold}.")
    if not 0 < FLAGS.fmr < 1:
        raise ValueError(f"--fmr must be in (0, 1); got {FLAGS.fmr}.")
    if not 0 <= FLAGS.link_probability < 1:
        raise ValueError(f"--link_probability must be in [0, 1); got {FLAGS.link_probability}.")
    optional = {
        k: FLAGS[k].value for k in ("relink_gap", "min_visibility", "batch_frames") if FLAGS[k].value is not None
    }
    return Options(
        link=FLAGS.link, threshold=FLAGS.threshold, fmr=FLAGS.fmr, calibration=found, learn_transit=FLAGS.learn_transit,
        probability=FLAGS.link_probability or None, camera_centring=FLAGS.camera_centring,
        transit=linking.parse_transit(FLAGS.transit), detections=FLAGS.detections,
        threads=FLAGS.threads, annotate=None if FLAGS.annotate == "none" else FLAGS.annotate,
        store=FLAGS.store, store_run=FLAGS.store_run, **optional,
    )  # fmt: skip


def main(argv):
    sal_app.no_arguments(argv)
    sal_app.require_flags("source", "output_dir")
    from sal_tf.mtmc import linking, sources
    from sal_tf.mtmc import run as mtmc
    from sal_tf.tracking import appearance
    from sal_tf.utils.progress import Progress

    cameras, warnings = sources.open_cameras(FLAGS.source, sources.parse_start_times(FLAGS.start_times))
    for warning in warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    options = _options()
    linking.check_transit_cameras(options.transit, [c.name for c in cameras])
    mtmc.check_outputs(cameras, FLAGS.output_dir, FLAGS.overwrite)
    model = appearance.appearance_model(FLAGS.tracker, FLAGS.model, FLAGS.threads, FLAGS.precision)
    settings = mtmc.tracker_settings(FLAGS.tracker)
    total = sum(c.length for c in cameras) or None
    progress = Progress(total, "Tracking", FLAGS.progress, unit="frame", stream=sys.stderr)
    info = {"tracker": FLAGS.tracker, "model": FLAGS.model, "detections": FLAGS.detections}
    report = mtmc.run_cameras(cameras, model, settings, FLAGS.output_dir, options, progress, info)
    progress.finish()
    print(
        f"{len(cameras)} cameras, {report['frames']} frames, {report['tracklets']} tracklets -> "
        f"{report['global_ids']} global ids (threshold {report['threshold']} from {report['threshold_from']}); "
        f"{report['frames_per_second']:.1f} frames/s; journeys: {os.path.join(FLAGS.output_dir, 'journeys.json')}"
    )
    if "store" in report:
        print(
            f"{report['store']['items']} tracklets added to the store {FLAGS.store} (ids {report['store']['run']}/...)"
        )
    if report["metrics"]:
        print(_table(report))


def run():
    """Console-script entry point (`sal-mtmc`); one OpenBLAS thread by default, as `sal-track` (its `run`)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

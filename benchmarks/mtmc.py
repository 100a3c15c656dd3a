"""Multi-camera tracking benchmark: cross-camera IDF1 of SAL, colour histograms and no linking; re-entries; speed.

    nice -n 10 python benchmarks/mtmc.py                           # held-out cameras, demo model
    python benchmarks/mtmc.py --model=runs/demo --seed=41          # another model / the tuning cameras
    python benchmarks/mtmc.py --seed=41 --pipelines=sal --nocalibration_line --calibration=cal.json  # tuning
    python benchmarks/mtmc.py --seed=41 --pipelines=sal --nocalibration_line --nocamera_centring  # raw features

Cameras: `sal_tf.data.demo_cameras` (4 cameras × 600 frames, 640×360, 10 frames/s, 16 people walking
through c1 → c4, people never seen by the demo model), rendered once into --cache_dir. Detections:
the cameras' det/det.txt (simulated detector: jitter, misses, false boxes); `--detections=hog`
OpenCV's HOG people detector instead. Pipelines (the same
`sal_tf.mtmc.run` as `sal-mtmc`):

* `sal`: DeepSORT with SAL (`run.tracker_settings`), tracks cut where lost for > 2 s and where their
  appearance jumps (`run.SPLIT_FACTOR`), each camera's mean tracklet embedding taken out
  (`sal_tf.mtmc.centring`; `--nocamera_centring`: not), tracklets linked within and across cameras
  at the calibration's P(same) >= 0.5 (the model's evaluation on the demo test set, --calibration;
  its distances × the centring factor), clustered a second time with the transit times learned from
  the first clustering (`sal_tf.mtmc.transit`);
* `histogram`: the same with colour histograms, at the distance of FMR 1e-2 of the run's own
  pairs of tracklets seen in two cameras at once (histograms have no calibration);
* `sal_camera`: SAL, linked within each camera only; `none`: `sal-track`'s SAL tracks as they
  come (its own DeepSORT settings; each camera's tracks kept apart, no linking).

Per pipeline: per-camera and cross-camera IDF1 / IDP / IDR, MOTA, ID switches, re-entries that keep
their id; frames/s of the whole pipeline (decoding, detections, appearance, association, linking;
no clip written) over the 4 cameras' frames. Calibration line: the demo model's distances on the
demo test set (`sal_tf.evaluation.calibration`), the threshold at FMR 1e-2 chosen on half the
identities and its false-match rate measured on the other half.

One JSON line per result in --output (default benchmarks/results/mtmc_cpu_2core.jsonl).
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see sal_tf/cli/track.py run(): DeepSORT's 4×4 solves

from absl import app, flags

from sal_tf.data import demo_cameras
from sal_tf.evaluation import calibration
from sal_tf.mtmc import run, sources
from sal_tf.tracking import appearance, deepsort

flags.DEFINE_string("model", "/tmp/base_runs/demo/stage2.keras", "SAL model (any form sal-mtmc takes).")
flags.DEFINE_string("calibration", None, "Calibration JSON of the model (default: found beside it, else "
                    "measured here on --demo_dir).")  # fmt: skip
flags.DEFINE_string("demo_dir", "~/.cache/sal_tf/demo/demo_market_v1_seed0", "Demo dataset for the calibration.")
flags.DEFINE_string("cache_dir", "~/.cache/sal_tf", "Where the cameras are rendered once.")
flags.DEFINE_integer("seed", demo_cameras.TEST_SEED, "Cameras' seed (TEST_SEED: held out).")
flags.DEFINE_string("detections", "det", "Boxes: det (the cameras' simulated det/det.txt), gt, hog (OpenCV's HOG "
                    "people detector) or an .onnx detector (sal-mtmc --detections).")  # fmt: skip
flags.DEFINE_list("pipelines", ["sal", "histogram", "sal_camera", "none"], "Pipelines to run.")
flags.DEFINE_bool("calibration_line", True, "Measure the calibration line on --demo_dir (off: only the pipelines, "
                  "with --calibration or the model's own; for tuning).")  # fmt: skip
flags.DEFINE_bool("camera_centring", run.Options.camera_centring, "Link on camera-centred tracklet features "
                  "(sal-mtmc's --camera_centring; default as sal-mtmc).")  # fmt: skip
flags.DEFINE_string("output", "benchmarks/results/mtmc_cpu_2core.jsonl", "JSON lines written here.")
FLAGS = flags.FLAGS


def demo_features(model, demo_dir):
    """(query, gallery) embeddings, pids and cameras of the demo test set."""
    import numpy as np

    from sal_tf.data import load_dataset, pipelines
    from sal_tf.evaluation.features import extract_features
    from sal_tf.inference.evaluate import feature_model
    from sal_tf.inference.loading import load_embedder

    embedder = load_embedder(model)
    data = load_dataset("market1501", os.path.expanduser(demo_dir), verbose=False)
    q, g = pipelines.build_query_gallery_datasets(data, embedder.image_size, 128)
    qf = extract_features(feature_model(embedder), q, normalize=True, verbose=False)
    gf = extract_features(feature_model(embedder), g, normalize=True, verbose=False)
    ids = [np.array([getattr(r, k) for r in split]) for split in (data.query, data.gallery) for k in ("pid", "camid")]
    return np.asarray(qf), np.asarray(gf), ids


def measure_calibration(emit):
    """The model's calibration (found, given, or measured on the demo test set) and the hold-out line."""
    if not FLAGS.calibration_line:
        found = calibration.from_json(FLAGS.calibration) if FLAGS.calibration else calibration.find(FLAGS.model)
        if found is None:
            raise app.UsageError("--nocalibration_line needs --calibration or a model with its calibration.")
        return found
    qf, gf, (qp, qc, gp, gc) = demo_features(FLAGS.model, FLAGS.demo_dir)
    measured = calibration.calibrate_features(qf, gf, qp, gp, qc, gc)
    emit({"benchmark": "mtmc_calibration", "model": FLAGS.model, "pairs": measured["pairs"],
          "thresholds": measured["thresholds"], "holdout": calibration.holdout(qf, gf, qp, gp, qc, gc, 1e-2),
          "holdout_1e-3": calibration.holdout(qf, gf, qp, gp, qc, gc, 1e-3)})  # fmt: skip
    if FLAGS.calibration:
        return calibration.from_json(FLAGS.calibration)
    return calibration.find(FLAGS.model) or measured


def pipeline(name, cameras, cal, folder):
    """One pipeline end to end (`run.run_cameras`); returns its report and wall-clock seconds."""
    kind = "histogram" if name == "histogram" else "sal"
    model = appearance.appearance_model(kind, FLAGS.model if kind == "sal" else None)
    link = {"sal": "all", "histogram": "all", "sal_camera": "camera", "none": "none"}[name]
    options = run.Options(link=link, calibration=cal if kind == "sal" else None, annotate=None, crops=False,
                          detections=FLAGS.detections, camera_centring=FLAGS.camera_centring)  # fmt: skip
    # `none` is sal-track as it is (its own gate, the best single-camera IDF1), the stronger baseline
    settings = deepsort.settings_for(kind) if name == "none" else run.tracker_settings(kind)
    start = time.perf_counter()
    report = run.run_cameras(cameras, model, settings, os.path.join(folder, name), options)
    return report, time.perf_counter() - start


def main(argv):
    del argv
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    out = open(FLAGS.output, "a")

    def emit(record):
        line = json.dumps(record)
        print(line, flush=True)
        out.write(line + "\n")
        out.flush()

    root = demo_cameras.ensure_cameras(FLAGS.cache_dir, seed=FLAGS.seed)
    cameras, _ = sources.open_cameras(root)
    emit({"benchmark": "mtmc_setup", "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
          "cameras": root, "seed": FLAGS.seed, "camera_centring": FLAGS.camera_centring,
          "frames": sum(c.length for c in cameras),
          "frame_size": list(demo_cameras.FRAME_SIZE), "fps": demo_cameras.FPS, "model": FLAGS.model,
          "detections": "det/det.txt (simulated detector)" if FLAGS.detections == "det" else FLAGS.detections})  # fmt: skip
    cal = measure_calibration(emit)
    with tempfile.TemporaryDirectory() as folder:
        for name in FLAGS.pipelines:
            report, seconds = pipeline(name, cameras, cal, folder)
            m = report["metrics"]
            emit({"benchmark": "mtmc", "pipeline": name, "threshold": report["threshold"],
                  "threshold_from": report["threshold_from"], "tracklets": report["tracklets"],
                  "global_ids": report["global_ids"], "ground_truth_ids": m["cross_camera"]["ground_truth_ids"],
                  "cross_camera": m["cross_camera"], "reentries": m["reentries"],
                  "cameras": {c: {k: r[k] for k in ("idf1", "mota", "id_switches")} for c, r in m["cameras"].items()},
                  "frames": report["frames"], "frames_per_s": report["frames_per_second"],
                  "pipeline_seconds": report["seconds"], "seconds_with_metrics": round(seconds, 2),
                  "stage_seconds": {k: round(sum(s[k] for s in report["per_camera"].values()), 2)
                                    for k in ("detection_seconds", "appearance_seconds", "association_seconds")},
                  "linking_seconds": report["seconds"]["linking"],
                  "load_average": [round(x, 2) for x in os.getloadavg()]})  # fmt: skip


if __name__ == "__main__":
    app.run(main)

"""Tracking benchmark: DeepSORT with no appearance (IoU), colour histograms, or SAL, on held-out video.

    nice -n 5 python benchmarks/tracking.py                     # held-out sequences + encoder speed
    nice -n 5 python benchmarks/tracking.py --tune              # settings grid on the tuning sequences
    python benchmarks/tracking.py --model=runs/demo/stage2.keras --trackers=sal --nopaper

Sequences: `sal_tf.data.demo_sequences` (2 scenes × 3 cameras × 240 frames, 320×240, 15 frames/s,
people never seen by the demo model), rendered once into --cache_dir: `TEST_SEED` for the figures,
`TUNING_SEED` for --tune. Detections: the oracle boxes of gt/gt.txt (people ≥ 30 % visible), so
every difference is one of association. Metrics: py-motmetrics (`sal_tf.tracking.metrics`).

Per tracker: the boxes of each sequence are embedded once (timed: appearance), then DeepSORT runs
with the tracker's settings (`sal_tf.tracking.deepsort.SETTINGS`, timed: association); frames/s =
frames / (appearance + association), decoding excluded. --tune runs a grid of max_cosine_distance
× max_age × n_init per tracker on the tuning sequences (embeddings reused) and prints the best by
IDF1. Separability lines: within each sequence, the cosine distances of every 4th frame's boxes,
same person vs different people (AUC = P(same < different), quantiles). Encoder lines: crops/s
(wall clock) and CPU ms per crop of `BoxEncoder` with the model (Keras, and converted to ONNX) on
real frames and boxes, per batch (one frame's boxes, and 16 frames at once), and of a randomly
initialised paper-preset model.

One JSON line per result in --output (default benchmarks/results/tracking_cpu_2core.jsonl).
"""

import itertools
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see sal_tf/cli/track.py run(): DeepSORT's 4×4 solves

import numpy as np
from absl import app, flags

from sal_tf.data import demo_sequences
from sal_tf.inference.boxes import BoxEncoder, pixel_boxes
from sal_tf.tracking import appearance, deepsort, metrics, mot

flags.DEFINE_string("model", "/tmp/base_runs/demo/stage2.keras", "SAL model for --trackers=sal (any form).")
flags.DEFINE_list("trackers", list(appearance.KINDS), "Appearance models to compare.")
flags.DEFINE_string("cache_dir", "~/.cache/sal_tf", "Where the sequences are rendered once.")
flags.DEFINE_string("output", "benchmarks/results/tracking_cpu_2core.jsonl", "JSON lines written here.")
flags.DEFINE_bool("tune", False, "Grid-search the tracker settings on the tuning sequences instead.")
flags.DEFINE_bool("paper", True, "Also time the encoder with a randomly initialised paper-preset model.")
flags.DEFINE_bool("onnx", True, "Also time the encoder on the model converted to ONNX (ONNX Runtime).")
flags.DEFINE_bool("encoder_only", False, "Only the encoder lines (no tracking).")
flags.DEFINE_list("batches", ["1", "4", "8", "16"], "Boxes per encoder call (one frame's boxes).")
FLAGS = flags.FLAGS
GRID = {"max_cosine_distance": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4), "max_age": (30, 60, 90, 120), "n_init": (1,)}


def load(folder):
    """(sequence, [(frame number, RGB frame, xyxy, conf, gt ids)]): the oracle boxes (gt rows that count) with area."""
    sequence = mot.Sequence(folder)
    gt = mot.ground_truth_rows(mot.read_rows(sequence.file(mot.GT_FILE)), demo_sequences.MIN_VISIBILITY)
    frames = []
    for number, image in sequence.frames():
        rows = gt[gt[:, 0] == number]
        boxes = mot.ltwh_to_xyxy(rows[:, 2:6])
        keep = pixel_boxes(boxes, image.shape)[1]
        frames.append((number, image, boxes[keep], np.ones(int(keep.sum())), rows[keep, 1].astype(int)))
    return sequence, frames


def embed(model, frames, batch_frames=16):
    """Per-frame feature rows of `model` and the seconds it took (several frames per call)."""
    features, start = [], time.perf_counter()
    for s in range(0, len(frames), batch_frames):
        chunk = frames[s : s + batch_frames]
        features += model.embed_frames([f[1] for f in chunk], [f[2] for f in chunk])
    return features, time.perf_counter() - start


def associate(sequence, frames, features, settings, folder):
    """Runs DeepSORT on precomputed rows; returns (accumulator, seconds)."""
    tracker, rows, start = deepsort.Tracker(settings), [], time.perf_counter()
    for (number, _, boxes, conf, _), feats in zip(frames, features):
        rows += [(number, *r) for r in tracker.update(boxes, conf, feats)]
    seconds = time.perf_counter() - start
    path = os.path.join(folder, f"{sequence.name}.txt")
    mot.write_results(path, rows)
    return metrics.evaluate_sequence(sequence, path, demo_sequences.MIN_VISIBILITY), seconds


def evaluate(data, kind, model, settings, folder, cached=None):
    """Overall metrics + timings of one tracker over all sequences (`cached`: {name: features} reused)."""
    accumulators, frames_total, t_app, t_assoc = {}, 0, 0.0, 0.0
    for sequence, frames in data:
        if cached is not None and sequence.name in cached:
            features = cached[sequence.name]
        else:
            features, seconds = embed(model, frames)
            t_app += seconds
            if cached is not None:
                cached[sequence.name] = features
        accumulators[sequence.name], seconds = associate(sequence, frames, features, settings, folder)
        t_assoc, frames_total = t_assoc + seconds, frames_total + len(frames)
    summary = metrics.summarize(accumulators)
    timing = {"frames": frames_total, "appearance_s": round(t_app, 3), "association_s": round(t_assoc, 3)}
    if t_app:
        timing["frames_per_s"] = round(frames_total / (t_app + t_assoc), 2)
        timing["appearance_ms_per_frame"] = round(1000 * t_app / frames_total, 2)
    return summary, timing


def tune(data, kinds, folder, emit):
    """Grid of settings per tracker on the tuning sequences; emits every point and the best by IDF1."""
    for kind in kinds:
        model, cached, best = appearance.appearance_model(kind, FLAGS.model), {}, None
        grid = GRID if kind != "iou" else {"max_iou_distance": (0.5, 0.7, 0.9), "n_init": (1, 2)}
        for values in itertools.product(*grid.values()):
            settings = deepsort.settings_for(kind, **dict(zip(grid, values)))
            summary, _ = evaluate(data, kind, model, settings, folder, cached)
            point = {"benchmark": "tracking_tune", "tracker": kind, "settings": vars(settings), **summary["OVERALL"]}
            emit(point, echo=False)
            key = (point["idf1"], -point["id_switches"])
            best = max(best or (key, point), (key, point), key=lambda kp: kp[0])
        emit({**best[1], "benchmark": "tracking_tune_best"})


def separability(data, features, step=4):
    """Same-person vs different-people cosine distances of every `step`-th frame's boxes, within each sequence."""
    same, different = [], []
    for sequence, frames in data:
        picked = range(0, len(frames), step)
        rows = np.concatenate([features[sequence.name][i] for i in picked])
        ids = np.concatenate([frames[i][4] for i in picked])
        upper = np.triu_indices(len(rows), 1)
        distances, is_same = (1.0 - rows @ rows.T)[upper], ids[upper[0]] == ids[upper[1]]
        same.append(distances[is_same])
        different.append(distances[~is_same])
    same, different = np.concatenate(same), np.sort(np.concatenate(different))
    auc = np.mean(1.0 - np.searchsorted(different, same, side="right") / len(different))
    return {
        "pairs_same": len(same), "pairs_different": len(different), "auc": round(float(auc), 4),
        "same_median": round(float(np.median(same)), 4), "same_p90": round(float(np.percentile(same, 90)), 4),
        "different_p1": round(float(np.percentile(different, 1)), 4),
        "different_p10": round(float(np.percentile(different, 10)), 4),
    }  # fmt: skip


def encoder_speed(model, frames, emit):
    """crops/s of `BoxEncoder` on real frames and boxes: per batch of one frame's boxes, and 16 frames at once."""
    encoder = model if isinstance(model, BoxEncoder) else BoxEncoder(model)
    line = {"benchmark": "tracking_encoder", "model": encoder.backend.source, "kind": encoder.kind}
    busy = [f for f in frames if len(f[2]) >= 3][:50]
    for batch in [int(b) for b in FLAGS.batches]:
        boxes = [np.resize(f[2], (batch, 4)) for f in busy]  # the frame's boxes, repeated up to `batch`
        emit({**line, "batch": batch, **_rate(lambda i, b=boxes: encoder(busy[i % 50][1], b[i % 50]), batch)})
    chunk = busy[:16]
    crops = sum(len(f[2]) for f in chunk)
    rate = _rate(lambda i: encoder.embed_frames([f[1] for f in chunk], [f[2] for f in chunk]), crops)
    emit({**line, "frames_per_call": 16, **rate})


def onnx_copy(model_path, folder):
    """The ONNX (NHWC) file of a Keras model, converted as `python -m export --onnx` does (unchecked here)."""
    from sal_tf.export import onnx_export
    from sal_tf.export import saved_model as sm
    from sal_tf.models import load_model
    from sal_tf.models.embedding import embedding_model_of

    emb, size = embedding_model_of(load_model(model_path))
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(onnx_export.convert(sm.EmbeddingServingModule(emb, size)))
    return path


def _rate(fn, crops, min_seconds=3.0):
    """crops/s (median of 3 slices, wall clock) and the process's CPU ms per crop, after a warm-up call."""
    fn(0)
    rates, cpu, calls_total = [], time.process_time(), 0
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - start < min_seconds / 3:
            fn(calls)
            calls += 1
        rates.append(calls * crops / (time.perf_counter() - start))
        calls_total += calls
    cpu_ms = 1000 * (time.process_time() - cpu) / (calls_total * crops)
    return {"crops_per_s": round(sorted(rates)[1], 1), "cpu_ms_per_crop": round(cpu_ms, 3), "crops_per_call": crops}


def paper_speed(frames, emit):
    """crops/s of a randomly initialised paper-preset model (256×128, 1024-d) at 8 boxes per call."""
    import keras

    from sal_tf.inference.embedder import KerasEmbedder
    from sal_tf.models import build_model

    keras.utils.set_random_seed(0)
    encoder = BoxEncoder(KerasEmbedder(build_model("paper", num_classes=751, verbose=False), source="paper (random)"))
    frame = next(f for f in frames if len(f[2]) >= 3)
    boxes = np.resize(frame[2], (8, 4))
    rate = _rate(lambda i: encoder(frame[1], boxes), 8, min_seconds=6.0)
    emit(
        {"benchmark": "tracking_encoder", "model": "paper preset, random weights", "kind": "keras", "batch": 8, **rate}
    )


def main(argv):
    del argv
    import logging

    logging.getLogger("deep_sort_realtime").setLevel(logging.WARNING)  # a line per tracker made
    out = open(FLAGS.output, "a")

    def emit(record, echo=True):
        out.write(json.dumps(record) + "\n")
        out.flush()
        if echo:
            print(json.dumps(record))

    seed = demo_sequences.TUNING_SEED if FLAGS.tune else demo_sequences.TEST_SEED
    root = demo_sequences.ensure_sequences(FLAGS.cache_dir, seed=seed)
    data = [load(os.path.join(root, n)) for n in sorted(os.listdir(root)) if n.startswith("S")]
    emit({"benchmark": "tracking_setup", "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
          "sequences": root, "seed": seed, "frames": sum(len(f) for _, f in data), "model": FLAGS.model,
          "detections": "oracle (gt boxes, visibility >= 0.3)", "note": "shared 2-core machine"})  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        if FLAGS.tune:
            return tune(data, FLAGS.trackers, folder, emit)
        for kind in [] if FLAGS.encoder_only else FLAGS.trackers:
            settings, cached = deepsort.SETTINGS[kind], {}
            model = appearance.appearance_model(kind, FLAGS.model)
            summary, timing = evaluate(data, kind, model, settings, folder, cached)
            per_sequence = {n: {k: m[k] for k in ("idf1", "mota", "id_switches")} for n, m in summary.items()}
            emit({"benchmark": "tracking", "tracker": kind, "settings": vars(settings), **summary["OVERALL"],
                  **timing, "sequences": per_sequence})  # fmt: skip
            if kind != "iou":
                emit({"benchmark": "tracking_separability", "tracker": kind, **separability(data, cached)})
        frames = [f for _, fs in data for f in fs]
        encoder_speed(FLAGS.model, frames, emit)
        if FLAGS.onnx:
            encoder_speed(onnx_copy(FLAGS.model, folder), frames, emit)
    if FLAGS.paper:
        paper_speed(frames, emit)


if __name__ == "__main__":
    app.run(main)

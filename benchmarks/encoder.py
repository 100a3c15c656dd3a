"""The appearance model of a tracker: `BoxEncoder` crops/s per preset × saved form, beside its bare network.

    nice -n 10 python benchmarks/encoder.py --presets=tiny --model=runs/demo        # trained: mAP too
    nice -n 10 python benchmarks/encoder.py --presets=paper --rounds=2              # random weights: speed only

Per preset the model (a trained run's `.keras` with --model, else random weights) is exported once with
`sal_tf.export.export_lib.export` (SavedModel, ONNX, float32 / float16 / int8 TFLite; int8 calibrated
on --calibration_images training crops of the demo dataset, `sal_tf/export/accuracy.py`), or
--exports names an export folder to time as it is. Each ONNX / TFLite form is opened through
`sal_tf.inference.forms.open_backend` at each --threads count (the TensorFlow forms once, with
TensorFlow's own pools), and timed on --frames synthetic 1920×1080 frames with --boxes person boxes
each (60–200 px wide; one encoder call, one model call of boxes × frames crops), the encoder and its
network called in turn (median per call; interleaved rounds over the forms):

  * `encoder_crops_per_s`: `BoxEncoder.embed_frames(frames, boxes)`: crops cut and resized, the
    model, unit rows;
  * `network_images_per_s`: the same back end on the same crops already cut (`embed_array`), in the
    dtype its input takes (`input`: uint8 for a full-integer TFLite file, else float32);
  * `vs_network`: their ratio (what cropping and batching cost);
  * `bytes`: the form's size on disk; with --model, `mAP` / `rank1` (%) on the demo evaluation set
    (the export's accuracy report; the SavedModel scored here).

With --serve_ingest, `sal-serve` (its own process on 127.0.0.1, `benchmarks/service_process.py`) is
started on the `.keras` file and on the export folder (`auto`: the int8 file) and adds 1,024 demo
gallery crops by image (4 clients, 32 crops a request, `benchmarks/search_service.ingest`), three times
into one store: the median crops/s, and each run's.

One JSON line per (preset, form, threads), with the load average, after a setup line naming the CPU's features (/proc/cpuinfo:
avx2, avx512f, avx512_vnni, amx) and the load average. Speed only: the paper preset (~31 GFLOPs a
crop) runs at a few crops/s on 2 cores, so keep --rounds small there.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
from absl import app, flags, logging

from benchmarks.json_lines import cpu_features

flags.DEFINE_list("presets", ["tiny"], "Model presets (tiny, paper).")
flags.DEFINE_string("model", None, "A trained .keras file or run folder of the first preset (mAP reported).")
flags.DEFINE_integer("boxes", 16, "Person boxes in the 1080p frame (the batch of each model call).")
flags.DEFINE_list("threads", ["1", "2"], "Intra-op threads of the ONNX / TFLite runtimes: each count timed.")
flags.DEFINE_integer("frames", 1, "Frames per encoder call (embed_frames): the model batch is boxes × frames.")
flags.DEFINE_list(
    "forms", [], "Only these forms (keras, saved_model, onnx, tflite_float32, tflite_float16, tflite_int8)."
)
flags.DEFINE_string("exports", None, "An export folder of the first preset to time as it is (no export; speed only).")
flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds.")
flags.DEFINE_float("min_seconds", 1.0, "Each case's slice of a round (at least one call).")
flags.DEFINE_integer("calibration_images", 200, "Demo training crops that calibrate the int8 file.")
flags.DEFINE_bool(
    "bfloat16", False, "Also time the Keras form in bfloat16 (form keras_bfloat16; opt-in, needs avx512_bf16 / AMX)."
)
flags.DEFINE_bool("serve_ingest", False, "Also time sal-serve's ingest by image with the .keras file and `auto`.")
FLAGS = flags.FLAGS


def frame_and_boxes(count, seed=0):
    """A 1080p RGB uint8 frame with structure (blocks, gradients, noise) and `count` person boxes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    blocks = np.kron(rng.uniform(0, 255, (27, 48, 3)), np.ones((40, 40, 1)))
    frame = np.clip(blocks + rng.normal(0, 12, blocks.shape), 0, 255).astype(np.uint8)
    width = rng.uniform(60, 200, count)
    height = width * rng.uniform(2.0, 3.0, count)
    x, y = rng.uniform(0, 1920 - width), rng.uniform(0, 1080 - height)
    return frame, np.stack([x, y, x + width, y + height], 1)


def timed_pairs(pairs, rounds, min_seconds):
    """{name: (median s per call of the first, of the second)} of each pair of callables.

    The two of a pair are called in turn, call by call, for `min_seconds` per pair in each of `rounds`
    interleaved rounds (after one warm-up call each), so that a burst of load from other processes
    hits both alike and their ratio stays meaningful on a shared machine.
    """
    samples = {name: ([], []) for name in pairs}
    for first, second in pairs.values():
        first(), second()
    for _ in range(rounds):
        for name, fns in pairs.items():
            start = time.perf_counter()
            while not samples[name][0] or time.perf_counter() - start < min_seconds:
                for fn, times in zip(fns, samples[name]):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
    return {name: tuple(float(np.median(t)) for t in times) for name, times in samples.items()}


def exported_forms(model, folder, preset, data, trained):
    """{form: path} of the exported model and the export's result (accuracy reported when `trained`)."""
    from sal_tf.export import accuracy, export_lib
    from sal_tf.models.embedding import embedding_model_of

    _, size = embedding_model_of(model)
    check = accuracy.AccuracyCheck(data, allow_drop=True) if trained else None
    calibration = accuracy.calibration_images(data, size, FLAGS.calibration_images)
    result = export_lib.export(model, folder, preset, num_samples=4, tflite_files=True, onnx_file=True,
                               accuracy=check, calibration=calibration)  # fmt: skip
    forms = {"saved_model": result["saved_model"], "onnx": result["onnx"]}
    for q in ("float32", "float16", "int8"):
        forms[f"tflite_{q}"] = os.path.join(result["tflite"], f"{preset}_{q}.tflite")
    return forms, result


def accuracies(result, forms, data):
    """{form: {"mAP", "rank1"}} from the export's reports (the SavedModel scored here)."""
    from sal_tf.export import accuracy
    from sal_tf.inference.forms import open_backend

    out = {"keras": result["keras_accuracy"], "saved_model": accuracy.score(open_backend(forms["saved_model"]), data)}
    out["onnx"] = {k: result["onnx_report"]["accuracy"][k] for k in ("mAP", "rank1")}
    for entry in result["tflite_report"]["files"]:
        out[f"tflite_{entry['quantization']}"] = {k: entry[k] for k in ("mAP", "rank1")}
    return out


def size_on_disk(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def exported_paths(folder):
    """{form: path} of the forms of an existing export folder (`sal_tf.inference.forms.candidates`)."""
    from sal_tf.inference.forms import candidates

    return {kind if kind != "tflite" else f"tflite_{q}": path for kind, q, path in candidates(folder)}


def opened_backends(forms, keras_backend):
    """[(form, threads, backend)]: each ONNX / TFLite form at each --threads count, the TensorFlow forms once
    (TensorFlow's thread pools are set once per process), only --forms where given."""
    from sal_tf.inference.embedder import KerasEmbedder
    from sal_tf.inference.forms import open_backend

    opened = [("keras", "tensorflow default", keras_backend)] if keras_backend is not None else []
    if FLAGS.bfloat16:
        bf16 = KerasEmbedder(keras_backend.model, source=keras_backend.source, precision="bfloat16")
        opened.append(("keras_bfloat16", "tensorflow default", bf16))
    for form, path in forms.items():
        if FLAGS.forms and form not in FLAGS.forms:
            continue
        if form == "saved_model":
            opened.append((form, "tensorflow default", open_backend(path)))
        else:
            opened += [(form, int(t), open_backend(path, threads=int(t))) for t in FLAGS.threads]
    return [o for o in opened if not FLAGS.forms or o[0] in FLAGS.forms]


def network_input(backend, crops):
    """The crops as the network takes them: uint8 for a full-integer TFLite file, else float32 (no
    conversion timed in the bare network)."""
    return crops if getattr(backend, "integer_input", False) else crops.astype(np.float32)


def timed_forms(opened, frames, boxes):
    """{(form, threads): (s per encoder call, s per bare network call)} on `frames` × `boxes`."""
    from sal_tf.inference.boxes import BoxEncoder

    pairs = {}
    for form, threads, backend in opened:
        encoder = BoxEncoder(backend, batch_size=sum(len(b) for b in boxes))
        crops = network_input(backend, encoder.crops_of_frames(frames, boxes)[0])
        pairs[form, threads] = (
            (lambda e=encoder: e.embed_frames(frames, boxes)),
            (lambda b=backend, c=crops: b.embed_array(c)),
        )
    return timed_pairs(pairs, FLAGS.rounds, FLAGS.min_seconds)


def run_preset(preset, model_path, data, exports=None):
    from sal_tf.inference.embedder import KerasEmbedder
    from sal_tf.models import build_model, load_model

    model = load_model(model_path) if model_path else build_model(preset, num_classes=751, verbose=False)
    frames, boxes = zip(*(frame_and_boxes(FLAGS.boxes, seed) for seed in range(FLAGS.frames)))
    with tempfile.TemporaryDirectory() as tmp:
        keras_file = model_path and (model_path if model_path.endswith(".keras") else None)
        if keras_file is None:
            keras_file = os.path.join(tmp, f"{preset}.keras")
            model.save(keras_file)
        t0 = time.perf_counter()
        if exports or (FLAGS.forms and all(f.startswith("keras") for f in FLAGS.forms)):  # nothing to export
            forms, scores, export_s = exported_paths(exports) if exports else {}, {}, None
        else:
            forms, result = exported_forms(model, os.path.join(tmp, "exports"), preset, data, bool(model_path))
            export_s = round(time.perf_counter() - t0, 1)
            scores = accuracies(result, forms, data) if model_path else {}
        opened = opened_backends(forms, KerasEmbedder(model, source=keras_file))
        sizes = {
            "keras": size_on_disk(keras_file),
            "keras_bfloat16": size_on_disk(keras_file),
            **{form: size_on_disk(path) for form, path in forms.items()},
        }
        seconds = timed_forms(opened, list(frames), list(boxes))
        if FLAGS.serve_ingest:
            serve_ingest(preset, {"keras": keras_file, "auto": exports or os.path.join(tmp, "exports")})
        batch = FLAGS.boxes * FLAGS.frames
        for form, threads, backend in opened:
            encoder_rate, network_rate = (batch / t for t in seconds[form, threads])
            line = {
                "benchmark": "encoder",
                "preset": preset,
                "form": form,
                "input": "uint8" if getattr(backend, "integer_input", False) else "float32",
                "precision": backend.precision,
                "boxes": FLAGS.boxes,
                "frames": FLAGS.frames,
                "threads": threads,
                "encoder_crops_per_s": round(encoder_rate, 2),
                "network_images_per_s": round(network_rate, 2),
                "vs_network": round(encoder_rate / network_rate, 3),
                "bytes": sizes[form],
                **scores.get(form, {}),
                "export_seconds": export_s,
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
            print(json.dumps(line), flush=True)


def serve_ingest(preset, models, total=1024, batch=32, clients=4, runs=3):
    """Prints sal-serve's ingest crops/s with each of `models` ({form: path}) on the demo gallery crops:
    the median of `runs` timed runs of `total` new crops each into one store (every run's figure listed).

    The stores are removed only after the last form: on a file system without a journal (this
    machine's ext4) each file created in the ~30 s after thousands were removed scans past their
    freed inodes, so removing one form's store would slow the next form's crop files."""
    import glob

    from benchmarks.search_service import DEMO_GALLERY, ingest
    from benchmarks.service_process import ServiceProcess

    crops = [
        open(p, "rb").read() for p in sorted(glob.glob(os.path.join(os.path.expanduser(DEMO_GALLERY), "*.jpg")))[:256]
    ]
    with tempfile.TemporaryDirectory() as tmp:  # one folder, removed at the end: see the docstring
        for form, model in models.items():
            args = [f"--model={model}", f"--store={tmp}/{form}"]
            with ServiceProcess(args, os.path.join(tmp, f"{form}.log")) as server:
                ingest(server.url, crops, 4 * batch, batch, clients, "warm-up")
                timed = [ingest(server.url, crops, total, batch, clients, f"run{r}") for r in range(runs)]
            rates = [line["crops_per_s"] for line, _, _ in timed]
            line = {**timed[0][0], "crops_per_s": float(np.median(rates)), "runs": rates}
            print(json.dumps({"benchmark": "serve_ingest", "preset": preset, "form": form, **line,
                              "errors": sum(e for _, _, e in timed), "load_average": list(os.getloadavg())}),
                  flush=True)  # fmt: skip


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    from sal_tf.data import load_dataset

    tf.config.set_visible_devices([], "GPU")
    print(json.dumps({"benchmark": "encoder_setup", "cpus": os.cpu_count(), "cpu_features": cpu_features(),
                      "tensorflow": tf.__version__, "load_average": list(os.getloadavg())}), flush=True)  # fmt: skip
    data = load_dataset("demo", verbose=False)
    for i, preset in enumerate(FLAGS.presets):
        run_preset(preset, FLAGS.model if i == 0 else None, data, FLAGS.exports if i == 0 else None)


if __name__ == "__main__":
    app.run(main)

"""Inference throughput: Keras vs the exported SavedModel vs each TFLite file vs ONNX Runtime.

    python benchmarks/inference.py                   # tiny + paper, batch 1 and 32
    python benchmarks/inference.py --quick           # fewer iterations (paper is slow on 2 cores)
    python benchmarks/inference.py --presets=tiny --batches=1,8,32

Per preset (random weights), the model is exported with `export.export_lib.export`
(SavedModel + checked float32/float16/int8 TFLite files + checked ONNX file) into a
temporary folder; its int8 file is full integer (uint8 input, int8 ops from the first op on),
calibrated on --calibration_images demo training crops (`sal_tf/export/tflite.py`); with
--calibration_images=0 it has dynamic-range weights and float input instead.
(`benchmarks/encoder.py` times `BoxEncoder` on every form.)
One JSON line per (preset, runtime, batch), with the median and best images/s over
interleaved rounds (the cases alternate, so load from other processes hits all alike):
  * `keras`: `embedding_model.predict_on_batch` on float32 RGB at the model size;
  * `savedmodel_images`: the `serving_images` signature (uint8 at the model size:
    resize is the identity, so this is the same work as Keras + cast);
  * `savedmodel_bytes`: the `serving_default` signature on JPEG bytes of
    128×64 images (decode + resize included);
  * `tflite_<float32|float16|int8>`: LiteRT interpreter, --threads threads, fed its input's dtype
    (uint8 pixels for the full-integer int8 file, float32 for the others);
  * `onnxruntime`: ONNX Runtime CPU session of `model.onnx`, ORT_ENABLE_ALL graph
    optimisations, --threads intra-op threads; with --onnx_variants also
    `onnxruntime_1thread` (1 intra-op thread), `onnxruntime_no_spin` (idle threads do not
    busy-wait) and `onnxruntime_no_graph_opt` (ORT_DISABLE_ALL, --threads threads).
Each line states its `threads` (TensorFlow: its default intra-op pool, one per CPU) and,
for ONNX Runtime, `vs_savedmodel_images` (images/s ratio in the same run). Then one line
per preset with the file sizes (bytes) and parity figures. Runs on the CPU (GPUs hidden)
unless --device=auto.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags, logging

flags.DEFINE_list("presets", ["tiny", "paper"], "Model presets.")
flags.DEFINE_list("batches", ["1", "32"], "Batch sizes.")
flags.DEFINE_bool("quick", False, "Short timings: 3 rounds of ≥ 0.3 s per case (default: 5 rounds of ≥ 1 s).")
flags.DEFINE_integer("rounds", 0, "Interleaved timing rounds per case (0: 3 with --quick, else 5).")
flags.DEFINE_float("min_seconds", 0.0, "Each case's slice of a round, at least one call (0: 0.3 with --quick, else 1).")
flags.DEFINE_enum("device", "cpu", ["cpu", "auto"], "cpu: hide GPUs.")
flags.DEFINE_integer("threads", 0, "TFLite interpreter and ONNX Runtime intra-op threads (0: os.cpu_count()).")
flags.DEFINE_integer("calibration_images", 200, "Demo training crops calibrating the full-integer int8 file (0: none).")
flags.DEFINE_bool(
    "onnx_variants", True, "Also time ONNX Runtime with 1 thread, without spinning and without graph optimisations."
)
FLAGS = flags.FLAGS


def timed(fn, min_seconds):
    """(seconds per call, calls) over at least one call and `min_seconds`."""
    calls, start = 0, time.perf_counter()
    while calls < 1 or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls, calls


def interleaved(cases, rounds, min_seconds):
    """Times every case in each of `rounds` rounds (so load from other processes hits all alike).

    Returns {name: (median seconds per call, best seconds per call, calls)} after one warm-up call each.
    """
    for fn in cases.values():
        fn()
    samples = {name: [] for name in cases}
    calls = dict.fromkeys(cases, 0)
    for _ in range(rounds):
        for name, fn in cases.items():
            seconds, n = timed(fn, min_seconds)
            samples[name].append(seconds)
            calls[name] += n
    return {name: (sorted(v)[len(v) // 2], min(v), calls[name]) for name, v in samples.items()}


def onnx_cases(path, floats, threads, variants):
    """{runtime: (callable, threads)} of ONNX Runtime sessions of `path` on `floats`."""
    from sal_tf.export import onnx_export

    settings = {"onnxruntime": ("all", threads, True)}
    if variants:
        settings.update(
            onnxruntime_1thread=("all", 1, True),
            onnxruntime_no_spin=("all", threads, False),
            onnxruntime_no_graph_opt=("disable", threads, True),
        )
    cases = {}
    for name, (level, n, spinning) in settings.items():
        sess = onnx_export.session(path, threads=n, optimization=level, spinning=spinning)
        cases[name] = (lambda sess=sess: onnx_export.run_onnx(sess, floats)), n
    return cases


# One preset's measurements in one place (Keras eager / graph, SavedModel, ONNX, TFLite), in the order
# they are printed; long but linear.
def run_preset(preset, batches, rounds, min_seconds, threads, onnx_variants=True, calibration_images=0):
    import numpy as np
    import tensorflow as tf

    from sal_tf.export import accuracy, export_lib, tflite
    from sal_tf.export import signatures as sig
    from sal_tf.models import build_model

    model = build_model(preset, num_classes=751, verbose=False)
    emb, (h, w) = export_lib.embedding_model_of(model)
    calibration = None
    if calibration_images:
        from sal_tf.data import load_dataset

        calibration = accuracy.calibration_images(load_dataset("demo", verbose=False), (h, w), calibration_images)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = export_lib.export(model, tmp, preset, num_samples=4, tflite_files=True, onnx_file=True,
                                   calibration=calibration)  # fmt: skip
        export_s = time.perf_counter() - t0
        loaded = tf.saved_model.load(result["saved_model"])
        by_images = loaded.signatures[sig.SIGNATURE_IMAGES]
        by_bytes = loaded.signatures[sig.SIGNATURE_BYTES]
        rng = np.random.default_rng(0)
        lines = []
        for b in batches:
            pixels = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)
            floats = pixels.astype(np.float32)
            jpegs = tf.constant(
                [tf.io.encode_jpeg(tf.image.resize(p, (128, 64)).numpy().astype(np.uint8)).numpy() for p in pixels]
            )
            u8 = tf.constant(pixels)
            cases = {
                "keras": lambda floats=floats: emb.predict_on_batch(floats),
                "savedmodel_images": lambda u8=u8: by_images(images=u8)[sig.OUTPUT].numpy(),
                "savedmodel_bytes": lambda jpegs=jpegs: by_bytes(image_bytes=jpegs)[sig.OUTPUT].numpy(),
            }
            for q in tflite.QUANTIZATIONS:
                interp = tflite.interpreter(os.path.join(result["tflite"], f"{preset}_{q}.tflite"), threads)
                inp = interp.get_input_details()[0]
                interp.resize_tensor_input(inp["index"], [b, h, w, 3])
                interp.allocate_tensors()
                out_index = interp.get_output_details()[0]["index"]

                fed = pixels if np.dtype(inp["dtype"]) == np.uint8 else floats

                def run(interp=interp, index=inp["index"], out_index=out_index, fed=fed):
                    interp.set_tensor(index, fed)
                    interp.invoke()
                    return interp.get_tensor(out_index)

                cases[f"tflite_{q}"] = run
            used = dict.fromkeys(cases, os.cpu_count())
            used.update(dict.fromkeys((f"tflite_{q}" for q in tflite.QUANTIZATIONS), threads))
            for name, (fn, n) in onnx_cases(result["onnx"], floats, threads, onnx_variants).items():
                cases[name], used[name] = fn, n
            timings = interleaved(cases, rounds, min_seconds)
            for runtime, (median, best, calls) in timings.items():
                line = {
                    "benchmark": "inference",
                    "preset": preset,
                    "runtime": runtime,
                    "batch": b,
                    "images_per_s": round(b / median, 2),
                    "images_per_s_best": round(b / best, 2),
                    "ms_per_batch": round(1000 * median, 2),
                    "calls": calls,
                    "threads": used[runtime],
                }
                if runtime.startswith("onnxruntime"):
                    line["vs_savedmodel_images"] = round(timings["savedmodel_images"][0] / median, 3)
                print(json.dumps(line), flush=True)
                lines.append(line)
        sm_dir = result["saved_model"]
        sizes = {
            "saved_model_pb": os.path.getsize(os.path.join(sm_dir, "saved_model.pb")),
            "saved_model_variables": result["variables_bytes"],
            "parameter_bytes": result["parameter_bytes"],
            **{
                f"tflite_{q}": os.path.getsize(os.path.join(result["tflite"], f"{preset}_{q}.tflite"))
                for q in tflite.QUANTIZATIONS
            },
            "onnx": os.path.getsize(result["onnx"]),
        }
        cosines = {f["quantization"]: round(f["min_cosine"], 6) for f in result["tflite_report"]["files"]}
        onnx_report = result["onnx_report"]
        print(
            json.dumps(
                {
                    "benchmark": "inference_files",
                    "preset": preset,
                    "bytes": sizes,
                    "tflite_min_cosine": cosines,
                    "savedmodel_max_abs_diff": result["parity"]["max_abs_diff"],
                    "onnx_min_cosine": round(onnx_report["min_cosine"], 7),
                    "onnx_max_abs_diff": onnx_report["max_abs_diff"],
                    "onnx_convert_seconds": onnx_report["convert_seconds"],
                    "export_seconds": round(export_s, 1),
                }
            ),
            flush=True,
        )
        return lines


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    if FLAGS.device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    min_seconds = FLAGS.min_seconds or (0.3 if FLAGS.quick else 1.0)
    rounds = FLAGS.rounds or (3 if FLAGS.quick else 5)
    threads = FLAGS.threads or os.cpu_count()
    batches = [int(b) for b in FLAGS.batches]
    print(
        json.dumps(
            {
                "benchmark": "inference_setup",
                "cpus": os.cpu_count(),
                "tensorflow": tf.__version__,
                "device": FLAGS.device,
                "rounds": rounds,
                "min_seconds": min_seconds,
                "tflite_threads": threads,
                "int8": "full integer, uint8 input" if FLAGS.calibration_images else "dynamic-range weights",
                "onnxruntime_intra_op_threads": threads,
                "tensorflow_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
                "onnxruntime": _version("onnxruntime"),
                "tf2onnx": _version("tf2onnx"),
                "load_average": list(os.getloadavg()),
            }
        ),
        flush=True,
    )
    for preset in FLAGS.presets:
        run_preset(preset, batches, rounds, min_seconds, threads, FLAGS.onnx_variants, FLAGS.calibration_images)


def _version(package):
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    app.run(main)

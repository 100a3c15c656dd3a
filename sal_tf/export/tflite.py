"""TFLite files of the embedding model, each checked with LiteRT before it is kept.

Files (float32 RGB [B, H, W, 3] in [0, 255] at the model size → L2-normalised
`embedding` [B, D]; batch 1 by default, resizable with
`interpreter.resize_tensor_input`):
  * `<prefix>_float32.tflite`: no quantisation;
  * `<prefix>_float16.tflite`: float16 weights (dequantised at load);
  * `<prefix>_int8.tflite`: dynamic-range int8 weights, float activations.

The converter is fed `EmbeddingServingModule.serve_float` with its variables
frozen into constants first (`freeze`), so it cannot lose the weights (a wrapper
that does not track them makes the converter silently emit a tiny model that
outputs NaN), and it skips the converter's own SavedModel round trip (faster; BUILD.md
"Export and serving").
Every file is then run by the LiteRT interpreter on the sample images at batch 1
and batch N and compared with the Keras model (cosine per image, finite values);
a file below its threshold is deleted and reported as an error.
"""

import json
import os

import numpy as np
import tensorflow as tf

QUANTIZATIONS = ("float32", "float16", "int8")
MIN_COSINE = {"float32": 0.9999, "float16": 0.999, "int8": 0.99}
REPORT_FILE = "parity.json"


class TFLiteParityError(RuntimeError):
    """A converted TFLite file does not reproduce the Keras model."""


def freeze(module):
    """`module.serve_float` (an `EmbeddingServingModule`) with its variables as constants."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(module.serve_float.get_concrete_function())


def convert(frozen, quantization):
    """Converts a frozen concrete function (see `freeze`) → TFLite flatbuffer bytes."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"Unknown TFLite quantization {quantization!r}; expected one of {QUANTIZATIONS}.")
    if frozen.variables:
        raise ValueError("convert() expects a frozen function (no variables); pass tflite.freeze(module).")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights
    return converter.convert()


def interpreter(path, num_threads=None):
    """A LiteRT interpreter of a .tflite file (`ai_edge_litert`, the TFLite runtime)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=path, num_threads=num_threads)


def run_tflite(interp, images):
    """Runs an interpreter (or a .tflite path) on float32 [N, H, W, 3] as one batch → [N, D]."""
    if isinstance(interp, (str, os.PathLike)):
        interp = interpreter(interp)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [len(images), *inp["shape"][1:]])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.asarray(images, np.float32))
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]))


def parity(path, images, reference, quantization):
    """Compares a TFLite file with the Keras reference at batch 1 and batch N.

    Args:
        path: .tflite file.
        images: float32 [N, H, W, 3] RGB in [0, 255] at the model size.
        reference: L2-normalised Keras embeddings [N, D].
        quantization: key of `MIN_COSINE`.

    Returns:
        dict: min/mean cosine, max abs difference, threshold, passed, input shape signature.
    """
    interp = interpreter(path)
    detail = interp.get_input_details()[0]
    batched = run_tflite(interp, images)
    single = np.concatenate([run_tflite(interp, images[i : i + 1]) for i in range(len(images))], 0)
    finite = bool(np.isfinite(batched).all() and np.isfinite(single).all())
    cos = np.concatenate([_cosine(batched, reference), _cosine(single, reference)])
    diff = float(np.max(np.abs(np.concatenate([batched, single]) - np.concatenate([reference, reference]))))
    min_cos = float(np.min(cos)) if finite else float("nan")
    return {
        "file": os.path.basename(path),
        "quantization": quantization,
        "size_bytes": os.path.getsize(path),
        "input": {
            "name": detail["name"],
            "dtype": np.dtype(detail["dtype"]).name,
            "shape_signature": [int(s) for s in detail["shape_signature"]],
        },
        "images": int(len(images)),
        "min_cosine": min_cos,
        "mean_cosine": float(np.mean(cos)) if finite else float("nan"),
        "max_abs_diff": diff if finite else float("nan"),
        "min_cosine_required": MIN_COSINE[quantization],
        "finite": finite,
        "passed": bool(finite and min_cos >= MIN_COSINE[quantization]),
    }


def _cosine(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def write_tflite_files(
    module, directory, images, reference, quantizations=QUANTIZATIONS, prefix="model", parameter_bytes=None
):
    """Converts, checks and writes the TFLite files into `directory` (+ `parity.json`).

    A file is written under a temporary name, checked, and renamed to its final
    name only if it passes; a failing file is deleted.

    Returns:
        the parity report dict (also written to `<directory>/parity.json`).

    Raises:
        TFLiteParityError: some file failed (the report names it and its cosine).
    """
    os.makedirs(directory, exist_ok=True)
    frozen = freeze(module)
    report = {"reference": "Keras model on CPU", "files": []}
    failed = []
    for q in quantizations:
        final = os.path.join(directory, f"{prefix}_{q}.tflite")
        tmp = final + ".unchecked"
        with open(tmp, "wb") as f:
            f.write(convert(frozen, q))
        try:
            entry = parity(tmp, images, reference, q)
        except Exception as e:  # an interpreter that cannot run the file is a failed file
            entry = {
                "file": os.path.basename(final),
                "quantization": q,
                "passed": False,
                "error": f"{type(e).__name__}: {e}",
            }
        entry["file"] = os.path.basename(final)
        if parameter_bytes:
            entry["size_vs_float32_weights"] = round(os.path.getsize(tmp) / parameter_bytes, 4)
        if entry["passed"]:
            os.replace(tmp, final)
        else:
            os.remove(tmp)
            failed.append(entry)
        report["files"].append(entry)
    report["passed"] = not failed
    with open(os.path.join(directory, REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2)
    if failed:
        raise TFLiteParityError(
            f"TFLite parity failed in {directory}: "
            + "; ".join(
                f"{e['file']}: min cosine {e.get('min_cosine', 'n/a')} < {MIN_COSINE[e['quantization']]}"
                + (f" ({e['error']})" if "error" in e else "")
                + (" (non-finite outputs)" if e.get("finite") is False else "")
                for e in failed
            )
            + ". Failing files were deleted; see parity.json."
        )
    return report

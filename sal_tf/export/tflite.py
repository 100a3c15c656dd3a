"""TFLite files of the embedding model, each checked with LiteRT before it is kept.

Files (RGB [B, H, W, 3] pixels at the model size → L2-normalised `embedding` float32 [B, D]; batch 1
in the file, resizable with `interpreter.resize_tensor_input`):
  * `<prefix>_float32.tflite`: float32 input 0..255, no quantisation;
  * `<prefix>_float16.tflite`: float32 input, float16 weights (dequantised at load);
  * `<prefix>_int8.tflite`: full integer: **uint8 input** (the pixels themselves: scale 1, zero
    point 0), int8 activations and per-channel int8 weights calibrated on real training crops
    (`sal_tf.export.accuracy.calibration_images`), float32 output (one DEQUANTIZE at the end). The
    caffe preprocessing's RGB → BGR flip is folded into conv1's kernel and its mean subtraction is an
    int8 SUB (`sal_tf/export/pixels.py`), so no float op runs before the first int8 one (XNNPACK's
    QS8 kernels from the first op on). Without calibration images (no training data known): float32
    input and dynamic-range int8 weights with float activations, as the report says.

The converter is fed `sal_tf.export.pixels.serving_function` of the module's Keras model (batch 1:
dilated convolutions stay single CONV_2D ops) with its variables frozen into constants first
(`freeze`), so it cannot lose the weights (a wrapper that does not track them makes the converter
silently emit a tiny model that outputs NaN), and it skips the converter's own SavedModel round
trip (faster; BUILD.md "Export and serving"). A module without a Keras model (the NCHW wrapper,
`sal_tf/export/nchw.py`) is converted from its `serve_float`.
Every file is then run by the LiteRT interpreter on the sample images at batch 1
and batch N and compared with the Keras model (cosine per image, finite values);
a file below its threshold is deleted and reported as an error. With an
`AccuracyCheck` (`sal_tf/export/accuracy.py`) each file's mAP / Rank-1 on the evaluation
set is reported beside its cosine, and a file losing more mAP than allowed is not published.
"""

import json
import os

import numpy as np
import tensorflow as tf

QUANTIZATIONS = ("float32", "float16", "int8")
MIN_COSINE = {"float32": 0.9999, "float16": 0.999, "int8": 0.99}
# Full-integer int8 (calibrated): a bound that catches a broken file only; its mAP is the real check.
MIN_COSINE_FULL_INTEGER = 0.8
REPORT_FILE = "parity.json"


class TFLiteParityError(RuntimeError):
    """A converted TFLite file does not reproduce the Keras model."""


def freeze(module):
    """The concrete function the converter is fed, its variables as constants: `pixels.serving_function`
    of an `EmbeddingServingModule`'s Keras model, or the `serve_float` of a module without one."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from sal_tf.export import pixels

    keras_model = getattr(module, "keras_model", None)
    function = pixels.serving_function(keras_model(), module.image_size) if keras_model else module.serve_float
    return convert_variables_to_constants_v2(function.get_concrete_function())


def convert(frozen, quantization, calibration=None):
    """Converts a frozen concrete function (see `freeze`) → TFLite flatbuffer bytes.

    calibration: float32 RGB images [n, H, W, 3] for int8 (full integer, uint8 input); None: dynamic-range int8.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"Unknown TFLite quantization {quantization!r}; expected one of {QUANTIZATIONS}.")
    if frozen.variables:
        raise ValueError("convert() expects a frozen function (no variables); pass tflite.freeze(module).")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # without calibration: dynamic range, int8 weights
        if calibration is not None:
            return _calibrated_int8(converter, calibration)
    return converter.convert()


def _calibrated_int8(converter, calibration):
    """Full-integer int8 calibrated on `calibration`: uint8 pixels in (`raw_pixel_input`), int8 ops only."""
    converter.representative_dataset = _representative(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    return raw_pixel_input(converter.convert())


def raw_pixel_input(flatbuffer):
    """The file with its uint8 input read as the pixels themselves (scale 1, zero point 0).

    The converter gives the input the range the calibration crops happened to span (e.g. 0.4..254.6);
    its first op, QUANTIZE uint8 → int8, requantises from whatever the input's parameters say to the
    calibrated int8 range, so declaring the input (1, 0) keeps the model the same and lets a caller
    pass uint8 crops as they are (`sal_tf.inference.tflite_backend.quantise`).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    readers = [op for op in graph.operators if graph.inputs[0] in list(op.inputs)]
    codes = [model.operatorCodes[op.opcodeIndex] for op in readers]
    if tensor.type != schema.TensorType.UINT8 or [c.builtinCode for c in codes] != [schema.BuiltinOperator.QUANTIZE]:
        raise ValueError("Full-integer conversion: expected a uint8 input read by one QUANTIZE op.")
    tensor.quantization.scale = np.array([1.0], np.float32)
    tensor.quantization.zeroPoint = np.array([0], np.int64)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _representative(images):
    """The converter's representative dataset: one float32 image [1, H, W, 3] per step."""
    images = np.asarray(images, np.float32)

    def steps():
        for image in images:
            yield [image[None]]

    return steps


def interpreter(path, num_threads=None):
    """A LiteRT interpreter of a .tflite file (`ai_edge_litert`, the TFLite runtime)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=path, num_threads=num_threads)


def run_tflite(interp, images):
    """Runs an interpreter (or a .tflite path) on float32 [N, H, W, 3] as one batch → [N, D].

    Integer inputs are quantised and integer outputs dequantised (`sal_tf.inference.tflite_backend`).
    """
    from sal_tf.inference.tflite_backend import dequantise, quantise

    if isinstance(interp, (str, os.PathLike)):
        interp = interpreter(interp)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], [len(images), *inp["shape"][1:]])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], quantise(np.asarray(images, np.float32), inp))
    interp.invoke()
    return dequantise(np.array(interp.get_tensor(out["index"])), out)


def parity(path, images, reference, quantization, min_cosine=None):
    """Compares a TFLite file with the Keras reference at batch 1 and batch N.

    Args:
        path: .tflite file.
        images: float32 [N, H, W, 3] RGB in [0, 255] at the model size.
        reference: L2-normalised Keras embeddings [N, D].
        quantization: key of `MIN_COSINE`.
        min_cosine: the threshold, if not `MIN_COSINE[quantization]`.

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
    required = MIN_COSINE[quantization] if min_cosine is None else min_cosine
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
        "min_cosine_required": required,
        "finite": finite,
        "passed": bool(finite and min_cos >= required),
    }


def _cosine(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def write_tflite_files(
    module,
    directory,
    images,
    reference,
    quantizations=QUANTIZATIONS,
    prefix="model",
    parameter_bytes=None,
    calibration=None,
    accuracy=None,
):
    """Converts, checks and writes the TFLite files into `directory` (+ `parity.json`).

    A file is written under a temporary name, checked (cosine parity, then with `accuracy`, an
    `sal_tf.export.accuracy.AccuracyCheck`, its mAP / Rank-1), and renamed to its final name only if it
    passes; a failing file is deleted. `calibration`: real images for full-integer int8.

    Returns:
        the parity report dict (also written to `<directory>/parity.json`).

    Raises:
        TFLiteParityError: some file failed its parity (the report names it and its cosine).
        accuracy.AccuracyDropError: a file lost more mAP than allowed (not written; the others are).
    """
    os.makedirs(directory, exist_ok=True)
    frozen = freeze(module)
    report = {"reference": "Keras model on CPU", "files": []}
    if accuracy is not None:
        report["keras_accuracy"] = accuracy.reference
    failed = []
    for q in quantizations:
        final = os.path.join(directory, f"{prefix}_{q}.tflite")
        tmp = os.path.join(directory, f".unchecked_{prefix}_{q}.tflite")
        with open(tmp, "wb") as f:
            f.write(convert(frozen, q, calibration))
        min_cosine = MIN_COSINE_FULL_INTEGER if q == "int8" and calibration is not None else None
        entry = _checked_entry(
            tmp, os.path.basename(final), q, images, reference, parameter_bytes, accuracy, min_cosine
        )
        if q == "int8":
            entry["int8"] = _int8_kind(calibration)
        entry["published"] = entry["passed"] and (entry.get("accuracy_passed", True) or accuracy.allow_drop)
        if entry["published"]:
            os.replace(tmp, final)
        else:
            os.remove(tmp)
            if not entry["passed"]:
                failed.append(entry)
        report["files"].append(entry)
    report["passed"] = not failed
    with open(os.path.join(directory, REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2)
    if failed:
        raise _parity_error(directory, failed)
    refusal = accuracy.refusal(report["files"]) if accuracy is not None else None
    if refusal is not None:
        raise refusal
    return report


def _parity_error(directory, failed):
    """The `TFLiteParityError` naming each failed file's entry of the report, its cosine and why."""
    return TFLiteParityError(
        f"TFLite parity failed in {directory}: "
        + "; ".join(
            f"{e['file']}: min cosine {e.get('min_cosine', 'n/a')} < {e.get('min_cosine_required', MIN_COSINE[e['quantization']])}"
            + (f" ({e['error']})" if "error" in e else "")
            + (" (non-finite outputs)" if e.get("finite") is False else "")
            for e in failed
        )
        + ". Failing files were deleted; see parity.json."
    )


def _int8_kind(calibration):
    if calibration is None:
        return "dynamic-range (int8 weights, float activations): no calibration images"
    return (
        "full integer: uint8 pixels in, int8 activations and per-channel int8 weights, calibrated on "
        f"{len(calibration)} training crops"
    )


def _checked_entry(path, name, quantization, images, reference, parameter_bytes, accuracy, min_cosine):
    """The report entry of one converted file: parity (an interpreter that cannot run it fails), size, mAP."""
    try:
        entry = parity(path, images, reference, quantization, min_cosine)
    except Exception as e:  # an interpreter that cannot run the file is a failed file
        entry = {"quantization": quantization, "passed": False, "error": f"{type(e).__name__}: {e}"}
    entry["file"] = name
    if parameter_bytes:
        entry["size_vs_float32_weights"] = round(os.path.getsize(path) / parameter_bytes, 4)
    if entry["passed"] and accuracy is not None:
        entry.update(accuracy.judge(path))
    return entry

"""ONNX file of the embedding model, checked with ONNX Runtime before it is kept.

Folder written by `write_onnx_file` (`<export_dir>/onnx/<name>/<version>/` in an export):

    model.onnx                     images float32 [B, H, W, 3] RGB 0..255 at the model size
                                   (B dynamic) → embedding float32 [B, D], L2-normalised;
                                   the caffe preprocessing is inside (the model's first layer)
    parity.json                    ONNX Runtime vs Keras on the sample images
    samples/images.npy             those images, float32 [N, H, W, 3]
    samples/reference_embeddings.npy   the Keras embeddings [N, D] (for `export.verify`)

The converter is `tf2onnx` (Keras 3's `model.export(format="onnx")` calls it too, on
the TensorFlow backend), fed the same `EmbeddingServingModule.serve_float` function
as the TFLite files, so the graph, its input name `images` and output name
`embedding` are those of the SavedModel. The file is written under a temporary
name, run by ONNX Runtime at batch N, batch 1 and an odd batch, compared with the
Keras model (cosine ≥ `MIN_COSINE` and max |Δ| ≤ `MAX_ABS_DIFF` on every image),
and renamed to `model.onnx` only if it passes.

Only `convert` imports TensorFlow / tf2onnx and only `write_onnx_file` imports
`sal_tf`; the rest needs numpy and onnxruntime, so `export.verify` can check a file
without TensorFlow (and import this module without loading `sal_tf`).
"""

import logging
import os
import time

import numpy as np

OPSET = 17  # ONNX Runtime, TensorRT ≥ 8.6 and OpenVINO ≥ 2023 all read it
MIN_COSINE = 0.9999
MAX_ABS_DIFF = 1e-4
ODD_BATCH = 7
MODEL_FILE = "model.onnx"
REPORT_FILE = "parity.json"
SAMPLES_DIR = "samples"
IMAGES_FILE = "images.npy"
REFERENCE_FILE = "reference_embeddings.npy"
INPUT = "images"
OUTPUT = "embedding"


class ONNXParityError(RuntimeError):
    """A converted ONNX file does not reproduce the Keras model (printed as `error:`, exit 1)."""

    exit_status = 1


def convert(module, opset=OPSET, metadata=None):
    """`module.serve_float` (an `EmbeddingServingModule`) → ONNX model bytes.

    Args:
        module: `export.saved_model.EmbeddingServingModule`.
        opset: ONNX opset of the file.
        metadata: dict of str → value stored in the file's `metadata_props`.
    """
    import tf2onnx

    fn = module.serve_float
    tf2onnx_logger = logging.getLogger("tf2onnx")
    level = tf2onnx_logger.level
    tf2onnx_logger.setLevel(logging.ERROR)  # its INFO lines (one per graph pass) would bury the report
    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=opset)
    finally:
        tf2onnx_logger.setLevel(level)
    proto.doc_string = "SAL-TF embedding model (Self-attention Learning for Person Re-identification, BMVC 2018)"
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    return proto.SerializeToString()


def session(path, threads=None, optimization="all", spinning=True):
    """An ONNX Runtime CPU `InferenceSession` of an .onnx file.

    Args:
        path: .onnx file (or its bytes).
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        optimization: graph optimisation level, "all" / "extended" / "basic" / "disable".
        spinning: let idle intra-op threads busy-wait for work (ORT's default); False
            yields the cores at once, which helps on machines shared with other processes.
    """
    import onnxruntime as ort

    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    if optimization not in levels:
        raise ValueError(f"Unknown ONNX Runtime optimization {optimization!r}; expected one of {sorted(levels)}.")
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[optimization]
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3  # errors only
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_onnx(sess, images):
    """Runs a session on float32 [N, H, W, 3] as one batch → embeddings [N, D]."""
    return sess.run([OUTPUT], {INPUT: np.asarray(images, np.float32)})[0]


def io_spec(sess):
    """{"inputs": {name: [dtype, shape]}, "outputs": {...}} of a session (dynamic dims as names)."""

    def spec(args):
        return {a.name: [a.type, [d if isinstance(d, int) else str(d) for d in a.shape]] for a in args}

    return {"inputs": spec(sess.get_inputs()), "outputs": spec(sess.get_outputs())}


def image_layout(images):
    """(channels_first, (H, W)) of sample inputs: [N, H, W, 3], or [N, 3, H, W] of an NCHW file (`export/nchw.py`)."""
    shape = np.shape(images)
    channels_first = len(shape) == 4 and shape[1] == 3 and shape[3] != 3
    return channels_first, tuple(shape[2:4] if channels_first else shape[1:3])


def spec_problems(spec, image_size, dim, channels_first=False):
    """What differs from images float32 [B, H, W, 3] (or [B, 3, H, W]) → embedding float32 [B, D], B dynamic."""
    (height, width), problems = image_size, []
    dims = [3, height, width] if channels_first else [height, width, 3]
    if list(spec["inputs"]) != [INPUT]:
        problems.append(f"inputs {list(spec['inputs'])}, expected ['{INPUT}']")
    elif spec["inputs"][INPUT][0] != "tensor(float)" or spec["inputs"][INPUT][1][1:] != dims:
        problems.append(f"input {spec['inputs'][INPUT]}, expected float32 [B, {', '.join(map(str, dims))}]")
    elif isinstance(spec["inputs"][INPUT][1][0], int):
        problems.append("input batch dimension is fixed, expected dynamic")
    if list(spec["outputs"]) != [OUTPUT]:
        problems.append(f"outputs {list(spec['outputs'])}, expected ['{OUTPUT}']")
    elif spec["outputs"][OUTPUT][0] != "tensor(float)" or spec["outputs"][OUTPUT][1][1:] != [dim]:
        problems.append(f"output {spec['outputs'][OUTPUT]}, expected float32 [B, {dim}]")
    return problems


def parity(path, images, reference, threads=None):
    """Compares an .onnx file run by ONNX Runtime with the Keras reference.

    Args:
        path: .onnx file.
        images: float32 [N, H, W, 3] RGB in [0, 255] at the model size (or the [N, 3, H, W]
            inputs of an NCHW file, `image_layout`).
        reference: L2-normalised Keras embeddings [N, D].
        threads: ONNX Runtime intra-op threads (None: its default).

    Returns:
        dict: io spec, batches run (N, 1 each, `ODD_BATCH` cycling the images), min/mean
        cosine and max abs difference over all of them, thresholds, problems, passed.
    """
    images, reference = np.asarray(images, np.float32), np.asarray(reference, np.float32)
    sess = session(path, threads)
    spec = io_spec(sess)
    channels_first, image_size = image_layout(images)
    problems = spec_problems(spec, image_size, reference.shape[1], channels_first)
    if problems:
        return {"io": spec, "problems": problems, "passed": False}
    odd = np.arange(ODD_BATCH) % len(images)
    outputs = [run_onnx(sess, images)]
    outputs += [run_onnx(sess, images[i : i + 1]) for i in range(len(images))]
    outputs.append(run_onnx(sess, images[odd]))
    got = np.concatenate(outputs, 0)
    want = np.concatenate([reference, reference, reference[odd]], 0)
    finite = bool(np.isfinite(got).all())
    cos = cosine(got, want) if finite else np.array([np.nan])
    min_cos = float(np.min(cos))
    diff = float(np.max(np.abs(got - want))) if finite else float("nan")
    if not finite:
        problems.append("non-finite outputs")
    elif not (min_cos >= MIN_COSINE and diff <= MAX_ABS_DIFF):
        problems.append(f"min cosine {min_cos:.6f} (≥ {MIN_COSINE} needed), max abs diff {diff:.3g} (≤ {MAX_ABS_DIFF})")
    return {
        "io": spec,
        "images": int(len(images)),
        "batches": [int(len(images)), 1, ODD_BATCH],
        "min_cosine": min_cos,
        "mean_cosine": float(np.mean(cos)),
        "max_abs_diff": diff,
        "min_cosine_required": MIN_COSINE,
        "max_abs_diff_allowed": MAX_ABS_DIFF,
        "finite": finite,
        "problems": problems,
        "passed": not problems,
    }


def cosine(a, b):
    """Row-wise cosine of two [N, D] arrays (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def write_onnx_file(module, directory, images, reference, metadata=None, reference_label="Keras on CPU"):
    """Converts, checks and writes `model.onnx` (+ `parity.json`, `samples/`) into `directory`.

    `reference_label` says in `parity.json` what computed `reference`.

    Returns:
        the parity report (also `<directory>/parity.json`), with the file's size, opset and
        conversion time.

    Raises:
        ONNXParityError: the file failed its check; it was deleted (parity.json says why).
    """
    from sal_tf.utils import write_atomically, write_json

    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, MODEL_FILE)
    tmp = final + ".unchecked"
    start = time.perf_counter()
    write_atomically(tmp, convert(module, metadata=metadata))
    seconds = round(time.perf_counter() - start, 2)
    try:
        entry = parity(tmp, images, reference)
    except Exception as e:  # a file ONNX Runtime cannot load or run is a failed file
        entry = {"problems": [f"{type(e).__name__}: {e}"], "passed": False}
    report = {"file": MODEL_FILE, "opset": OPSET, "size_bytes": os.path.getsize(tmp), "convert_seconds": seconds}
    report["reference"] = reference_label
    report.update(entry)
    if report["passed"]:
        os.makedirs(os.path.join(directory, SAMPLES_DIR), exist_ok=True)
        np.save(os.path.join(directory, SAMPLES_DIR, IMAGES_FILE), np.asarray(images, np.float32))
        np.save(os.path.join(directory, SAMPLES_DIR, REFERENCE_FILE), np.asarray(reference, np.float32))
        os.replace(tmp, final)
    else:
        os.remove(tmp)
    write_json(os.path.join(directory, REPORT_FILE), report)
    if not report["passed"]:
        raise ONNXParityError(
            f"ONNX parity failed in {directory}: {'; '.join(report['problems'])}. "
            f"The file was deleted; see {REPORT_FILE}."
        )
    return report

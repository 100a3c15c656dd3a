"""Export of a trained SAL model: SavedModel for TF Serving, TFLite and ONNX files, models.config.

Layout written under `export_dir`:

    models.config                         TF Serving model_config_list (other models kept)
    <name>/<version>/                     SavedModel (serving_default, serving_images)
        saved_model.pb, variables/
        assets.extra/tf_serving_warmup_requests
        assets.extra/sal_tf_export.json   metadata (source, image size, signatures, ...)
        assets.extra/samples/             sample images + Keras reference embeddings
    tflite/<name>/<version>/              with tflite=True
        <name>_float32.tflite, <name>_float16.tflite, <name>_int8.tflite, parity.json
    onnx/<name>/<version>/                with onnx_file=True (`export.onnx_export`)
        model.onnx, parity.json, samples/
    nchw/<name>/<version>/                with nchw_files=True (`export.nchw`): PyTorch re-ID input
        model.onnx, parity.json, samples/, tflite/ (with tflite=True)

Each version folder is built beside its target and renamed into place
(`export.versioning.publish`); versions increment and are never overwritten.
"""

import datetime
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from sal_tf.export import nchw, onnx_export, serving_config, tflite, versioning
from sal_tf.export import samples as smp
from sal_tf.export import saved_model as sm
from sal_tf.export import signatures as sig
from sal_tf.export.accuracy import AccuracyDropError
from sal_tf.models.embedding import embedding_model_of

METADATA_FILE = "sal_tf_export.json"
SAMPLES_DIR = "samples"
REFERENCE_FILE = "reference_embeddings.npy"


# Long for its docstring (every option and what each check raises); the body is a sequence of steps.
def export(
    model,
    export_dir,
    name,
    *,
    version=None,
    sample_images=None,
    num_samples=8,
    tflite_files=False,
    onnx_file=False,
    nchw_files=False,
    serving_base_path=None,
    source=None,
    verify=False,
    accuracy=None,
    calibration=None,
):
    """Exports `model` for TF Serving (and optionally TFLite and ONNX).

    Args:
        model: a `SALModel` (classifier and attention outputs are dropped), a
            Keras model with an `embedding` output, or an images → embedding model.
        export_dir: root folder (created).
        name: model name (TF Serving `name`; folder `<export_dir>/<name>`).
        version: int to write exactly that version, or None for the next one.
        sample_images: folder / file of real images for the parity checks, or
            None for synthetic person-like images.
        num_samples: images taken from `sample_images`.
        tflite_files: also write the checked float32 / float16 / int8 TFLite files.
        onnx_file: also write the checked `model.onnx` (run by ONNX Runtime).
        nchw_files: also write the checked NCHW `model.onnx` (and, with `tflite_files`, a float32
            TFLite file) taking [B, 3, H, W] ImageNet-normalised input (`export.nchw`).
        serving_base_path: the model's base path as the server sees it, for
            `models.config` (e.g. "/models/<name>" inside docker); default: the
            absolute local path.
        source: text recorded as the model's origin (e.g. the `.keras` path).
        verify: run `python -m export.verify` on the version in a fresh process
            before it is published (its report goes to `verify`); a failure
            publishes nothing.
        accuracy: an `export.accuracy.AccuracyCheck`: each TFLite / ONNX file's mAP / Rank-1 on its
            evaluation set is reported, and a file losing more than its margin is not published.
        calibration: float32 real images [n, H, W, 3] calibrating the full-integer int8 TFLite file.

    Returns:
        dict with `version`, `saved_model` (path), `models_config`, `parameter_bytes`,
        `variables_bytes`, `parity` (serving function vs Keras max abs diff), with
        verify `verify`, with TFLite `tflite` (folder) and `tflite_report`, and with
        ONNX `onnx` (the .onnx path) and `onnx_report`, with NCHW `nchw` and `nchw_report`.

    Raises:
        RuntimeError: the serving graph or the written SavedModel (verify=True)
            does not reproduce the Keras model; nothing is published.
        tflite.TFLiteParityError: a TFLite file failed its check (the SavedModel
            version is published; no TFLite folder is).
        onnx_export.ONNXParityError: the ONNX file failed its check (the SavedModel
            and TFLite versions are published; no ONNX folder is).
        accuracy.AccuracyDropError: after publishing everything else, a form lost more mAP than allowed
            (that file is not published).
    """
    _check_name(name)
    emb, image_size = embedding_model_of(model)
    samples = smp.load_image_files(sample_images, num_samples) if sample_images else smp.synthetic_images(num_samples)
    sample_bytes = [b for _, b in samples]
    images = smp.decode_batch(sample_bytes, image_size)
    reference = smp.keras_embeddings(emb, images)
    module = sm.EmbeddingServingModule(emb, image_size)
    max_abs_diff = _check_serving_graph(module, sample_bytes, reference)
    param_bytes = sm.parameter_bytes(emb)
    meta = dict(source=source, samples_source=sample_images or "synthetic", parameter_bytes=param_bytes)
    result = _publish_saved_model(module, emb, export_dir, name, version, samples, reference, meta, verify)
    result.update(
        models_config=os.path.join(export_dir, serving_config.CONFIG_FILE),
        base_path=serving_base_path or os.path.abspath(os.path.join(export_dir, name)),
        parameter_bytes=param_bytes,
        parity={"max_abs_diff": max_abs_diff, "images": len(samples)},
    )
    serving_config.update_models_config(result["models_config"], name, result["base_path"])
    if accuracy is not None and accuracy.reference is None:
        result["keras_accuracy"] = accuracy.set_reference(emb, source or "keras")
    refusals = []
    if tflite_files:
        result["tflite_report"], result["tflite"] = _publish_tflite(
            module, export_dir, name, result["version"], images, reference, param_bytes, calibration, accuracy,
            refusals,
        )  # fmt: skip
    if onnx_file:
        result["onnx_report"], result["onnx"] = _publish_onnx(
            module, export_dir, name, result["version"], images, reference, _onnx_metadata(module, source), accuracy,
            refusals,
        )  # fmt: skip
    if nchw_files:
        result["nchw_report"], result["nchw"] = nchw.publish_nchw(
            module, export_dir, name, result["version"], images, result["saved_model"], tflite_files, source
        )
    for refusal in filter(None, refusals):
        refusal.result = result  # what was published, for the command's report
        raise refusal
    return result


def _check_name(name):
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise ValueError(f"--name must be a plain folder name (letters, digits, '_', '-', '.'). Received: {name!r}")


def _publish_saved_model(module, emb, export_dir, name, version, samples, reference, meta, verify):
    """Builds, (verifies) and publishes `<export_dir>/<name>/<version>/`; returns the first result fields."""
    result = {}

    def build(tmp):
        sm.save(module, tmp)
        serving_config.write_warmup_requests(tmp, name, [b for _, b in samples[:2]])
        _write_samples_and_metadata(tmp, module, emb, samples, reference, meta)
        if verify:
            result["verify"] = verify_in_fresh_process(tmp)

    version, path = versioning.publish(os.path.join(export_dir, name), build, version=version)
    return {"version": version, "saved_model": path, "variables_bytes": sm.variables_bytes(path), **result}


def _publish_tflite(module, export_dir, name, version, images, reference, param_bytes, calibration, accuracy,
                    refusals):  # fmt: skip
    """Writes the checked `<export_dir>/tflite/<name>/<version>/` files; returns (report, folder).

    A file refused for its mAP (`accuracy.AccuracyDropError`) is left out, the others published; the
    refusal goes to `refusals`.
    """
    report = {}

    def build(tmp):
        try:
            report.update(
                tflite.write_tflite_files(
                    module,
                    tmp,
                    images,
                    reference,
                    prefix=name,
                    parameter_bytes=param_bytes,
                    calibration=calibration,
                    accuracy=accuracy,
                )  # fmt: skip
            )
        except AccuracyDropError as e:
            with open(os.path.join(tmp, tflite.REPORT_FILE)) as f:
                report.update(json.load(f))
            refusals.append(e)

    _, folder = versioning.publish(os.path.join(export_dir, "tflite", name), build, version=version)
    return report, folder


def _onnx_metadata(module, source):
    (h, w), dim = module.image_size, module.embedding_dim
    return {
        "input": f"{onnx_export.INPUT}: float32 [B, {h}, {w}, 3] RGB 0..255 (resize bilinearly to {h}x{w} first)",
        "output": f"{onnx_export.OUTPUT}: float32 [B, {dim}], L2-normalised",
        "image_size": f"{h},{w}",
        "embedding_dim": dim,
        **({"source": source} if source else {}),
    }


def _publish_onnx(module, export_dir, name, version, images, reference, metadata, accuracy, refusals):
    """Writes the checked `<export_dir>/onnx/<name>/<version>/model.onnx`; returns (report, path or None).

    With `accuracy`, its mAP / Rank-1 go in the report; a file losing too much is not published (None),
    its `AccuracyDropError` goes to `refusals`.
    """
    report = {}

    def build(tmp):
        report.update(onnx_export.write_onnx_file(module, tmp, images, reference, metadata=metadata))
        if accuracy is not None:
            report["accuracy"] = accuracy.judge(os.path.join(tmp, onnx_export.MODEL_FILE))
            refusal = accuracy.refusal([{"file": onnx_export.MODEL_FILE, **report["accuracy"]}])
            if refusal is not None:
                refusals.append(refusal)
                raise refusal

    try:
        _, folder = versioning.publish(os.path.join(export_dir, "onnx", name), build, version=version)
    except AccuracyDropError:
        return report, None
    return report, os.path.join(folder, onnx_export.MODEL_FILE)


def _write_samples_and_metadata(version_dir, module, emb, samples, reference, extra_meta):
    """`assets.extra/samples/` (images + Keras embeddings) and `assets.extra/sal_tf_export.json`."""
    extra = os.path.join(version_dir, "assets.extra")
    os.makedirs(os.path.join(extra, SAMPLES_DIR))
    names = []
    for i, (n, data) in enumerate(samples):
        names.append(f"{i:03d}_{os.path.basename(n)}")
        with open(os.path.join(extra, SAMPLES_DIR, names[-1]), "wb") as f:
            f.write(data)
    np.save(os.path.join(extra, SAMPLES_DIR, REFERENCE_FILE), reference)
    dim, size = module.embedding_dim, list(module.image_size)
    meta = {
        **extra_meta,
        "image_size": size,
        "embedding_dim": dim,
        "l2_normalized": True,
        "signatures": {
            sig.SIGNATURE_BYTES: {
                "inputs": {sig.INPUT_BYTES: "string [B] encoded JPEG/PNG"},
                "outputs": {sig.OUTPUT: f"float32 [B, {dim}]"},
            },
            sig.SIGNATURE_IMAGES: {
                "inputs": {sig.INPUT_IMAGES: "uint8 [B, H, W, 3] RGB, any H, W"},
                "outputs": {sig.OUTPUT: f"float32 [B, {dim}]"},
            },
        },
        "preprocessing": f"decode RGB, bilinear tf.image.resize to {size}, float32 RGB 0..255",
        "samples": names,
        "reference": f"{SAMPLES_DIR}/{REFERENCE_FILE}",
        "parameter_count": int(emb.count_params()),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    with open(os.path.join(extra, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=2)


def _check_serving_graph(module, sample_bytes, reference, tolerance=1e-5):
    """Runs the traced `serving_default` function on the samples; compares with Keras."""
    with tf.device("/cpu:0"):
        out = module.serve_bytes(tf.constant(sample_bytes))[sig.OUTPUT].numpy()
    diff = float(np.max(np.abs(out - reference)))
    if not diff <= tolerance:
        raise RuntimeError(
            f"The serving graph differs from the Keras model by {diff:.3g} (> {tolerance}) on the "
            "sample images; nothing exported."
        )
    return diff


def verify_in_fresh_process(version_dir, timeout=600):
    """Runs `python -m sal_tf.export.verify version_dir` in a new process; returns its report.

    Raises:
        RuntimeError: a check failed (the message lists them) or the process crashed.
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds sal_tf/
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run = subprocess.run(
        [sys.executable, "-m", "sal_tf.export.verify", version_dir],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
    )
    try:
        report = json.loads(run.stdout)
    except ValueError:
        raise RuntimeError(
            f"export.verify crashed on {version_dir} (exit {run.returncode}): {run.stderr[-2000:]}"
        ) from None
    if run.returncode != 0 or not report.get("passed"):
        failed = [c for c in report.get("checks", []) if not c["passed"]]
        raise RuntimeError(f"export.verify failed on {version_dir}: {json.dumps(failed)[:2000]}")
    return report

"""Verifies an exported SavedModel version the way TF Serving will use it.

    python -m export.verify exports/sal/3 [--tolerance=1e-5] [--device=cpu]

Runs in a process that imports TensorFlow only (no Keras model code, no
`sal_tf`): loads `<version dir>` with `tf.saved_model.load`, and checks

  * the signatures: `serving_default` (`image_bytes` string [B]) and
    `serving_images` (`images` uint8 [B, H, W, 3]) → `embedding` float32 [B, D];
  * both signatures on the sample images stored at export time
    (`assets.extra/samples/`) against the Keras model's embeddings stored beside
    them: max abs difference ≤ --tolerance; outputs L2-normalised;
  * bad requests (wrong dtype, wrong rank, 4 channels, undecodable bytes) raise
    a clear `InvalidArgumentError`, and the model still serves afterwards;
  * an empty batch gives an empty [0, D] result.

    python -m export.verify exports/onnx/sal/3[/model.onnx]    (or exports/nchw/sal/3: NCHW input)

An ONNX file (or an ONNX version folder) is checked with ONNX Runtime alone, in a
process that never imports TensorFlow: input `images` float32 [B, H, W, 3] with a
dynamic B and output `embedding` float32 [B, D]; the stored sample images
(`samples/`) at batch N, 1 and 7 against the Keras embeddings beside them
(cosine ≥ 0.9999, max abs difference ≤ 1e-4); outputs L2-normalised; a wrong
dtype or image size is rejected and the session still runs afterwards.

Prints a JSON report; exit status 1 if any check fails.
"""

import json
import os
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command's flags (called by `run`, never at import)."""
    flags.DEFINE_float("tolerance", 1e-5, "Largest allowed |SavedModel - Keras| on the sample images.")
    flags.DEFINE_enum(
        "device",
        "cpu",
        ["cpu", "auto"],
        "cpu: hide GPUs (the reference was computed on the CPU; TF32 on GPUs changes the 4th digit).",
    )


METADATA = os.path.join("assets.extra", "sal_tf_export.json")
# The sal_tf modules this check itself runs on (TF-free helpers, no Keras, no model code); any other is a failure.
_VERIFY_MODULES = ("sal_tf", "sal_tf.export", "sal_tf.export.signatures", "sal_tf.export.onnx_export", __name__)
_VERIFY_PACKAGES = ("sal_tf.utils",)  # imported by `sal_tf` itself; numpy / the standard library only


class Checks(list):
    """The report's list of checks: `add(name, passed, **detail)`."""

    def add(self, name, passed, **detail):
        self.append({"check": name, "passed": bool(passed), **detail})


def read_export(version_dir):
    """(metadata dict, sample image bytes, reference embeddings) stored with an export."""
    import numpy as np

    if not os.path.isfile(os.path.join(version_dir, "saved_model.pb")):
        raise FileNotFoundError(
            f"{version_dir}: no saved_model.pb; expected a version folder such as <export_dir>/<name>/1."
        )
    meta_path = os.path.join(version_dir, METADATA)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"{meta_path} is missing; was {version_dir} written by `python -m export`?")
    with open(meta_path) as f:
        meta = json.load(f)
    extra = os.path.dirname(meta_path)
    sample_bytes = []
    for name in meta["samples"]:
        with open(os.path.join(extra, "samples", name), "rb") as f:
            sample_bytes.append(f.read())
    return meta, sample_bytes, np.load(os.path.join(extra, meta["reference"]))


def verify(version_dir, tolerance=1e-5):
    """Runs all checks on `version_dir`; returns the report dict (`passed`: bool)."""
    import tensorflow as tf

    from sal_tf.export import signatures as sig

    meta, sample_bytes, reference = read_export(version_dir)
    dim = int(meta["embedding_dim"])
    checks = Checks()
    before = set(sys.modules)
    fns = tf.saved_model.load(version_dir).signatures
    checks.add("signatures present", {sig.SIGNATURE_BYTES, sig.SIGNATURE_IMAGES} <= set(fns), signatures=sorted(fns))
    by_bytes, by_images = fns[sig.SIGNATURE_BYTES], fns[sig.SIGNATURE_IMAGES]
    _check_specs(checks, by_bytes, by_images, dim)
    _check_outputs(checks, by_bytes, by_images, sample_bytes, reference, tolerance)
    _check_bad_requests(checks, by_bytes, by_images, sample_bytes, dim)
    again = by_bytes(**{sig.INPUT_BYTES: tf.constant(sample_bytes[:1])})[sig.OUTPUT].numpy()
    checks.add("serves after bad requests", float(abs(again - reference[:1]).max()) <= tolerance)
    _check_tensorflow_only(checks, before)
    return {
        "version_dir": os.path.abspath(version_dir),
        "tensorflow": tf.__version__,
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }


def _check_specs(checks, by_bytes, by_images, dim):
    from sal_tf.export import signatures as sig

    expected = {
        sig.SIGNATURE_BYTES: ({sig.INPUT_BYTES: ("string", [None])}),
        sig.SIGNATURE_IMAGES: ({sig.INPUT_IMAGES: ("uint8", [None, None, None, 3])}),
    }
    for key, fn in ((sig.SIGNATURE_BYTES, by_bytes), (sig.SIGNATURE_IMAGES, by_images)):
        inputs = {k: (v.dtype.name, v.shape.as_list()) for k, v in fn.structured_input_signature[1].items()}
        outputs = {k: (v.dtype.name, v.shape.as_list()) for k, v in fn.structured_outputs.items()}
        passed = inputs == expected[key] and outputs == {sig.OUTPUT: ("float32", [None, dim])}
        checks.add(f"{key} spec", passed, inputs=inputs, outputs=outputs)


def _check_outputs(checks, by_bytes, by_images, sample_bytes, reference, tolerance):
    """Both signatures reproduce the stored Keras embeddings (batch N and 1), normalised rows, empty batches."""
    import numpy as np
    import tensorflow as tf

    from sal_tf.export import signatures as sig

    out = by_bytes(**{sig.INPUT_BYTES: tf.constant(sample_bytes)})[sig.OUTPUT].numpy()
    diff = float(np.max(np.abs(out - reference)))
    checks.add(f"{sig.SIGNATURE_BYTES} vs Keras", diff <= tolerance, max_abs_diff=diff, images=len(sample_bytes))
    norms = np.linalg.norm(out, axis=1)
    checks.add("L2-normalised", np.allclose(norms, 1.0, atol=1e-5), norm_range=[float(norms.min()), float(norms.max())])
    decoded = [sig.decode_image(tf.constant(b)) for b in sample_bytes]
    single = np.concatenate([by_images(**{sig.INPUT_IMAGES: img[None]})[sig.OUTPUT].numpy() for img in decoded], 0)
    diff = float(np.max(np.abs(single - reference)))
    checks.add(f"{sig.SIGNATURE_IMAGES} vs Keras (batch 1)", diff <= tolerance, max_abs_diff=diff)
    same = [i for i, img in enumerate(decoded) if img.shape == decoded[0].shape]
    batch = by_images(**{sig.INPUT_IMAGES: tf.stack([decoded[i] for i in same])})[sig.OUTPUT].numpy()
    diff = float(np.max(np.abs(batch - reference[same])))
    checks.add(f"{sig.SIGNATURE_IMAGES} vs Keras (batch {len(same)})", diff <= tolerance, max_abs_diff=diff)
    dim = reference.shape[1]
    for key, fn, arg, empty in (
        (sig.SIGNATURE_BYTES, by_bytes, sig.INPUT_BYTES, tf.zeros([0], tf.string)),
        (sig.SIGNATURE_IMAGES, by_images, sig.INPUT_IMAGES, tf.zeros([0, 32, 16, 3], tf.uint8)),
    ):
        shape = fn(**{arg: empty})[sig.OUTPUT].shape.as_list()
        checks.add(f"{key} empty batch", shape == [0, dim], shape=shape)


def _check_bad_requests(checks, by_bytes, by_images, sample_bytes, dim):
    """Wrong dtype / rank / channels and undecodable bytes fail with a clear error."""
    import tensorflow as tf

    from sal_tf.export import signatures as sig

    byte_cases = [
        ("float32 instead of string", tf.constant([1.0])),
        ("rank 2", tf.constant([[sample_bytes[0]]])),
        ("undecodable bytes", tf.constant([sample_bytes[0], b"not an image"])),
        ("truncated JPEG", tf.constant([b"\xff\xd8\xff\xe0\x00\x10"])),
    ]
    image_cases = [
        ("float32 instead of uint8", tf.zeros([1, 8, 8, 3])),
        ("rank 3", tf.zeros([8, 8, 3], tf.uint8)),
        ("4 channels", tf.zeros([1, 8, 8, 4], tf.uint8)),
        ("zero height", tf.zeros([1, 0, 8, 3], tf.uint8)),
    ]
    for key, fn, arg, cases in (
        (sig.SIGNATURE_BYTES, by_bytes, sig.INPUT_BYTES, byte_cases),
        (sig.SIGNATURE_IMAGES, by_images, sig.INPUT_IMAGES, image_cases),
    ):
        for what, value in cases:
            try:
                fn(**{arg: value})
                checks.add(f"{key} rejects {what}", False, error=None)
            except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
                message = _first_line(e)
                checks.add(f"{key} rejects {what}", bool(message), error=f"{type(e).__name__}: {message}")


def _check_tensorflow_only(checks, before):
    # `import tensorflow` itself imports parts of Keras; loading and serving must add none.
    added = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("keras", "tf_keras"))
    ours = sorted(
        m
        for m in sys.modules
        if m.split(".")[0] == "sal_tf" and m not in _VERIFY_MODULES and not m.startswith(_VERIFY_PACKAGES)
    )
    checks.add(
        "TensorFlow only (no Keras or sal_tf code loaded)",
        not added and not ours,
        modules_added_by_load=added,
        sal_tf_modules=ours,
    )


def is_onnx_path(path):
    """True for an .onnx file or a folder holding `model.onnx` (an ONNX export version)."""
    from sal_tf.export import onnx_export

    return path.endswith(".onnx") or os.path.isfile(os.path.join(path, onnx_export.MODEL_FILE))


def verify_onnx(path):
    """Checks an ONNX export (file or version folder) with ONNX Runtime; returns the report dict."""
    import numpy as np

    from sal_tf.export import onnx_export as ox

    model_path = path if path.endswith(".onnx") else os.path.join(path, ox.MODEL_FILE)
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"{model_path}: no such ONNX file; expected <export_dir>/onnx/<name>/<version>.")
    samples = os.path.join(os.path.dirname(model_path), ox.SAMPLES_DIR)
    if not os.path.isfile(os.path.join(samples, ox.REFERENCE_FILE)):
        raise FileNotFoundError(f"{samples}/ is missing; was {model_path} written by `python -m export --onnx`?")
    images = np.load(os.path.join(samples, ox.IMAGES_FILE))
    reference = np.load(os.path.join(samples, ox.REFERENCE_FILE))
    checks = Checks()
    check = checks.add
    sess = ox.session(model_path)
    spec = ox.io_spec(sess)
    channels_first, (height, width) = ox.image_layout(images)  # NCHW: `python -m export --nchw`
    problems = ox.spec_problems(spec, (height, width), reference.shape[1], channels_first)
    layout = "[B, 3, H, W]" if channels_first else "[B, H, W, 3]"
    check(f"input images {layout} float32 → embedding [B, D], B dynamic", not problems, io=spec, problems=problems)
    if not problems:
        par = ox.parity(model_path, images, reference)
        detail = {k: par[k] for k in ("batches", "min_cosine", "max_abs_diff", "problems")}
        check("onnxruntime vs Keras", par["passed"], **detail)
        norms = np.linalg.norm(ox.run_onnx(sess, images), axis=1)
        check("L2-normalised", np.allclose(norms, 1.0, atol=1e-5), norm_range=[float(norms.min()), float(norms.max())])
        wrong_size = [1, 3, height + 1, width] if channels_first else [1, height + 1, width, 3]
        for what, value in (
            ("float64 instead of float32", images[:1].astype(np.float64)),
            ("wrong image size", np.zeros(wrong_size, np.float32)),
            ("rank 3", images[0]),
        ):
            try:
                sess.run([ox.OUTPUT], {ox.INPUT: value})
                check(f"rejects {what}", False, error=None)
            except Exception as e:  # onnxruntime's InvalidArgument / Fail
                check(f"rejects {what}", bool(str(e)), error=f"{type(e).__name__}: {_first_line(e)}")
        again = ox.run_onnx(sess, images[:1])
        check("runs after bad inputs", float(np.max(np.abs(again - reference[:1]))) <= ox.MAX_ABS_DIFF)
    import onnxruntime

    check("ONNX Runtime only (TensorFlow not imported)", "tensorflow" not in sys.modules)
    return {
        "onnx_file": os.path.abspath(model_path),
        "onnxruntime": onnxruntime.__version__,
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    lines = [
        ln.strip()
        for ln in text.splitlines()
        if ln.strip()
        and "Graph execution error" not in ln
        and not ln.strip().startswith(("Detected at node", "<stack traces", "[["))
    ]
    return lines[0][:300] if lines else ""


def main(argv):
    if len(argv) != 2:
        raise app.UsageError(
            "Usage: python -m export.verify <export_dir>/<name>/<version> | <export_dir>/onnx/<name>/<version>"
        )
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if is_onnx_path(argv[1]):
        report = verify_onnx(argv[1])
    else:
        if FLAGS.device == "cpu":
            import tensorflow as tf

            tf.config.set_visible_devices([], "GPU")
        report = verify(argv[1], FLAGS.tolerance)
    print(json.dumps(report, indent=2))
    if not report["passed"]:
        failed = [c["check"] for c in report["checks"] if not c["passed"]]
        print(f"FAILED: {failed}", file=sys.stderr)
        sys.exit(1)


def _main_reporting_user_errors(argv):
    # Not sal_tf.utils.app.run: it imports TensorFlow first (the ONNX check must run without
    # it) and loads sal_tf, which the SavedModel check asserts is absent; imported on error only.
    try:
        main(argv)
    except Exception as e:
        from sal_tf.utils import app as sal_app

        if isinstance(e, sal_app.USER_ERRORS):
            sys.exit(sal_app.report_error(e))
        raise


def run():
    """`python -m export.verify` / `python -m sal_tf.export.verify`."""
    define_flags()
    app.run(_main_reporting_user_errors)


if __name__ == "__main__":
    run()

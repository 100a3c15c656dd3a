"""Export and serving (BUILD.md "Export and serving"): SavedModel layout and signatures, atomic versions,
models.config, fresh-process verification, TFLite parity, and the client's REST /
gRPC requests against a test double of TF Serving's PredictionService."""

import base64
import hashlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent import futures

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from sal_tf.export import client, export_lib, serving_config, tflite, versioning
from sal_tf.export import saved_model as sm
from sal_tf.export import signatures as sig
from sal_tf.inference.loading import find_model_file
from sal_tf.models import load_model as load_keras_model
from tests.conftest import REPO, tiny_model

NAME = "sal"
OTHER_CONFIG = """
model_config_list {
  config {
    name: "other"
    base_path: "/models/other"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 7 } }
  }
}
"""


def _normalise(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _tree_digest(path):
    digest = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                digest[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return digest


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A training folder with stage1.keras and a different stage2.keras (+ a trainer temp file)."""
    keras.utils.set_random_seed(3)
    model = tiny_model(5)
    model_dir = tmp_path_factory.mktemp("run")
    model.save(str(model_dir / "stage1.keras"))
    kernel = model.get_layer("embedding").kernel
    kernel.assign(-2.0 * kernel.numpy())  # stage2 ≠ stage1
    model.save(str(model_dir / "stage2.keras"))
    (model_dir / "stage3.tmp123.keras").write_bytes(b"partial")  # trainer's in-progress name
    return model, str(model_dir)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """Export of the training folder with TFLite files, into a folder whose models.config lists another model."""
    model, model_dir = trained
    export_dir = str(tmp_path_factory.mktemp("exports"))
    with open(os.path.join(export_dir, "models.config"), "w") as f:
        f.write(OTHER_CONFIG)
    path = find_model_file(model_dir=model_dir)
    result = export_lib.export(load_keras_model(path), export_dir, NAME, tflite_files=True, source=path)
    return dict(result, export_dir=export_dir, model=model, model_dir=model_dir)


@pytest.fixture(scope="module")
def samples(exported):
    """(encoded bytes list, Keras reference [N, D]) computed here from the in-memory stage2 model."""
    images = export_lib.smp.synthetic_images(6, seed=11)
    data = [b for _, b in images]
    decoded = [tf.image.resize(tf.io.decode_image(b, channels=3, expand_animations=False), (64, 32)) for b in data]
    emb = exported["model"](tf.stack(decoded), training=False)["embedding"]
    return data, _normalise(emb).astype(np.float32)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported["saved_model"])


# === Model files ===


def test_find_model_file_takes_highest_stage(trained, tmp_path):
    _, model_dir = trained
    assert find_model_file(model_dir=model_dir) == os.path.join(model_dir, "stage2.keras")
    with pytest.raises(FileNotFoundError, match="stage1.keras"):
        find_model_file(model_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--model_dir"):
        find_model_file(model_dir=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="exactly one"):
        find_model_file(model_dir=model_dir, model=os.path.join(model_dir, "stage1.keras"))
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.keras"):
        find_model_file(model=str(tmp_path / "weights.h5"))


def test_exports_stage2_weights(exported, trained):
    model, model_dir = trained
    stage1 = load_keras_model(os.path.join(model_dir, "stage1.keras"))
    meta_dir = os.path.join(exported["saved_model"], "assets.extra")
    reference = np.load(os.path.join(meta_dir, "samples", "reference_embeddings.npy"))
    with open(os.path.join(meta_dir, "sal_tf_export.json")) as f:
        meta = json.load(f)
    files = [os.path.join(meta_dir, "samples", n) for n in meta["samples"]]
    images = export_lib.smp.decode_batch([open(p, "rb").read() for p in files], (64, 32))
    np.testing.assert_allclose(reference, _normalise(model(images)["embedding"]), atol=1e-5)
    assert np.abs(reference - _normalise(stage1(images)["embedding"])).max() > 1e-2
    assert meta["source"].endswith("stage2.keras")
    assert meta["image_size"] == [64, 32] and meta["embedding_dim"] == 128


# === Layout, models.config, weights ===


def test_serving_layout_and_models_config(exported):
    export_dir = exported["export_dir"]
    assert exported["version"] == 1
    assert exported["saved_model"] == os.path.join(export_dir, NAME, "1")
    assert sorted(os.listdir(os.path.join(export_dir, NAME))) == ["1"]  # no temp folder left
    for f in ("saved_model.pb", "variables/variables.index", "assets.extra/tf_serving_warmup_requests"):
        assert os.path.isfile(os.path.join(exported["saved_model"], f)), f
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(open(os.path.join(export_dir, "models.config")).read(), config)
    entries = {c.name: c for c in config.model_config_list.config}
    assert set(entries) == {"other", NAME}
    assert entries["other"].base_path == "/models/other"
    assert list(entries["other"].model_version_policy.specific.versions) == [7]
    assert entries[NAME].base_path == os.path.abspath(os.path.join(export_dir, NAME))
    assert entries[NAME].model_platform == "tensorflow"


def test_warmup_request_is_a_valid_predict_log(exported, loaded):
    path = os.path.join(exported["saved_model"], "assets.extra", serving_config.WARMUP_FILE)
    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    request = log.predict_log.request
    assert request.model_spec.name == NAME and request.model_spec.signature_name == sig.SIGNATURE_BYTES
    images = tf.make_ndarray(request.inputs[sig.INPUT_BYTES])
    out = loaded.signatures[sig.SIGNATURE_BYTES](**{sig.INPUT_BYTES: tf.constant(images)})
    assert out[sig.OUTPUT].shape == (len(images), 128)


def test_each_weight_stored_once(exported):
    emb = exported["model"].embedding_model()
    ckpt = os.path.join(exported["saved_model"], "variables", "variables")
    saved = {n: s for n, s in tf.train.list_variables(ckpt) if not n.startswith("_CHECKPOINTABLE")}
    assert len(saved) == len(emb.weights)
    assert sum(int(np.prod(s)) for s in saved.values()) == emb.count_params()
    assert exported["parameter_bytes"] == emb.count_params() * 4
    # A duplicated copy would double the data file; allow only checkpoint framing.
    assert exported["parameter_bytes"] <= exported["variables_bytes"] <= 1.05 * exported["parameter_bytes"]
    assert exported["variables_bytes"] == sm.variables_bytes(exported["saved_model"])


def test_models_config_errors_and_updates(tmp_path):
    path = str(tmp_path / "models.config")
    serving_config.update_models_config(path, "a", "/m/a")
    config = serving_config.update_models_config(path, "b", "/m/b")
    assert [(c.name, c.base_path) for c in config.model_config_list.config] == [("a", "/m/a"), ("b", "/m/b")]
    # An operator pins version 3 of "a" and labels it; re-exporting "a" keeps that.
    entry = config.model_config_list.config[0]
    entry.model_version_policy.specific.versions.append(3)
    entry.version_labels["stable"] = 3
    with open(path, "w") as f:
        f.write(text_format.MessageToString(config))
    config = serving_config.update_models_config(path, "a", "/m/a2")
    assert [(c.name, c.base_path) for c in config.model_config_list.config] == [("a", "/m/a2"), ("b", "/m/b")]
    entry = serving_config.read_models_config(path).model_config_list.config[0]
    assert list(entry.model_version_policy.specific.versions) == [3] and entry.version_labels["stable"] == 3
    (tmp_path / "bad.config").write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ValueError, match="bad.config"):
        serving_config.update_models_config(str(tmp_path / "bad.config"), "a", "/m/a")


# === Signatures ===


def test_signatures_match_what_the_client_sends(loaded):
    assert set(loaded.signatures) == {sig.SIGNATURE_BYTES, sig.SIGNATURE_IMAGES}
    by_bytes = loaded.signatures[sig.SIGNATURE_BYTES]
    (spec,) = by_bytes.structured_input_signature[1].values()
    assert list(by_bytes.structured_input_signature[1]) == [sig.INPUT_BYTES]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    out = by_bytes.structured_outputs[sig.OUTPUT]
    assert out.dtype == tf.float32 and out.shape.as_list() == [None, 128]
    by_images = loaded.signatures[sig.SIGNATURE_IMAGES]
    spec = by_images.structured_input_signature[1][sig.INPUT_IMAGES]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, None, None, 3]

    request = client.grpc_request(NAME, [b"\xff\xd8\xff", b"\x89PNG"], version=1)
    assert request.model_spec.signature_name == sig.SIGNATURE_BYTES
    assert list(request.inputs) == [sig.INPUT_BYTES]
    sent = request.inputs[sig.INPUT_BYTES]
    assert sent.dtype == tf.string.as_datatype_enum
    assert [d.size for d in sent.tensor_shape.dim] == [2]
    body = client.rest_body([b"ab"], "inputs")
    assert body == {"signature_name": sig.SIGNATURE_BYTES, "inputs": {sig.INPUT_BYTES: [{"b64": "YWI="}]}}
    assert client.rest_body([b"ab"])["instances"] == [{"b64": "YWI="}]


def test_both_signatures_match_keras(loaded, samples):
    data, reference = samples
    by_bytes = loaded.signatures[sig.SIGNATURE_BYTES]
    out = by_bytes(**{sig.INPUT_BYTES: tf.constant(data)})[sig.OUTPUT].numpy()
    np.testing.assert_allclose(out, reference, atol=1e-5)
    for b, ref in zip(data, reference):
        image = tf.io.decode_image(b, channels=3, expand_animations=False)
        one = loaded.signatures[sig.SIGNATURE_IMAGES](**{sig.INPUT_IMAGES: image[None]})[sig.OUTPUT]
        np.testing.assert_allclose(one.numpy()[0], ref, atol=1e-5)


@pytest.mark.parametrize(
    "signature, value, message",
    [
        (sig.SIGNATURE_BYTES, tf.constant([1.0]), "string"),
        (sig.SIGNATURE_BYTES, tf.constant([[b"x"]]), r"image_bytes \[1,1\] is not compatible"),
        (sig.SIGNATURE_BYTES, tf.constant([b"not an image"]), "not an encoded JPEG/PNG"),
        (sig.SIGNATURE_BYTES, tf.constant([b""]), "not an encoded JPEG/PNG"),
        (sig.SIGNATURE_IMAGES, tf.zeros([1, 8, 8, 3]), "uint8"),
        (sig.SIGNATURE_IMAGES, tf.zeros([8, 8, 3], tf.uint8), r"images \[8,8,3\] is not compatible"),
        (sig.SIGNATURE_IMAGES, tf.zeros([1, 8, 8, 1], tf.uint8), r"\[1,8,8,1\] is not compatible"),
        (sig.SIGNATURE_IMAGES, tf.zeros([1, 8, 0, 3], tf.uint8), "height >= 1, width >= 1"),
    ],
)
def test_bad_requests_raise_clear_errors(loaded, signature, value, message):
    fn = loaded.signatures[signature]
    arg = sig.INPUT_BYTES if signature == sig.SIGNATURE_BYTES else sig.INPUT_IMAGES
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        fn(**{arg: value})


def test_empty_batch_gives_empty_result(loaded):
    out = loaded.signatures[sig.SIGNATURE_BYTES](**{sig.INPUT_BYTES: tf.zeros([0], tf.string)})
    assert out[sig.OUTPUT].shape == (0, 128) and out[sig.OUTPUT].dtype == tf.float32
    out = loaded.signatures[sig.SIGNATURE_IMAGES](**{sig.INPUT_IMAGES: tf.zeros([0, 20, 10, 3], tf.uint8)})
    assert out[sig.OUTPUT].shape == (0, 128)


# === Fresh-process verification ===


def test_verify_fails_on_a_tampered_reference(exported, tmp_path):
    import shutil

    from sal_tf.export import verify

    copy = str(tmp_path / "1")
    shutil.copytree(exported["saved_model"], copy)
    ref = os.path.join(copy, "assets.extra", "samples", "reference_embeddings.npy")
    np.save(ref, np.load(ref) + 1e-4)
    report = verify.verify(copy)
    assert not report["passed"]
    failed = {c["check"] for c in report["checks"] if not c["passed"]}
    assert f"{sig.SIGNATURE_BYTES} vs Keras" in failed
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        verify.verify(str(tmp_path))


# === Versions and atomic writes ===


@pytest.mark.slow
def test_second_export_by_cli_is_verified_in_a_fresh_process_and_keeps_version_1(exported, capsys):
    from sal_tf.cli import export as cli

    if "export_dir" not in cli.FLAGS:  # flags are defined by the command's run(), not at import
        cli.define_flags()
    export_dir = exported["export_dir"]
    before = _tree_digest(exported["saved_model"])
    argv = ["export", f"--model_dir={exported['model_dir']}", f"--export_dir={export_dir}", f"--name={NAME}"]
    cli.FLAGS.unparse_flags()
    cli.FLAGS(argv)
    try:
        cli.main([argv[0]])
    finally:
        cli.FLAGS.unparse_flags()
    printed = json.loads(capsys.readouterr().out)
    assert printed["version"] == 2 and printed["saved_model"] == os.path.join(export_dir, NAME, "2")
    # The CLI ran `python -m export.verify` on the version in a fresh process before publishing it.
    report = printed["verify"]
    assert report["passed"] and os.path.basename(report["version_dir"]).startswith(versioning.TMP_PREFIX)
    checks = {c["check"]: c for c in report["checks"]}
    assert checks[f"{sig.SIGNATURE_BYTES} vs Keras"]["max_abs_diff"] <= 1e-5
    assert checks[f"{sig.SIGNATURE_IMAGES} vs Keras (batch 4)"]["max_abs_diff"] <= 1e-5
    only_tf = checks["TensorFlow only (no Keras or sal_tf code loaded)"]
    assert only_tf["modules_added_by_load"] == [] and only_tf["sal_tf_modules"] == []
    rejected = [c for c in report["checks"] if " rejects " in c["check"]]
    assert len(rejected) == 8 and all(c["passed"] and c["error"] for c in rejected)
    assert checks[f"{sig.SIGNATURE_BYTES} empty batch"]["shape"] == [0, 128]
    assert versioning.list_versions(os.path.join(export_dir, NAME)) == [1, 2]
    assert _tree_digest(exported["saved_model"]) == before
    config = serving_config.read_models_config(os.path.join(export_dir, "models.config"))
    assert [c.name for c in config.model_config_list.config] == ["other", NAME]
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_lib.export(exported["model"], export_dir, NAME, version=1, num_samples=1)
    assert _tree_digest(exported["saved_model"]) == before


def test_export_failing_mid_write_leaves_no_version(exported, monkeypatch, tmp_path):
    export_dir = str(tmp_path)
    seen = []

    def half_written_save(module, directory):
        os.makedirs(os.path.join(directory, "variables"))
        with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
            f.write(b"\x08\x01")  # a truncated proto, as after a crash mid-write
        seen.append(directory)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(export_lib.sm, "save", half_written_save)
    with pytest.raises(OSError, match="simulated"):
        export_lib.export(exported["model"], export_dir, NAME, num_samples=2)
    assert os.path.dirname(seen[0]) == os.path.join(export_dir, NAME)  # built beside the target
    assert os.listdir(os.path.join(export_dir, NAME)) == []  # no version, no temp folder
    assert not os.path.exists(os.path.join(export_dir, "models.config"))


def test_killed_writer_leaves_no_visible_version(tmp_path):
    base = str(tmp_path / NAME)
    os.makedirs(os.path.join(base, "1"))
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {REPO!r})
        from sal_tf.export import versioning

        def build(tmp):
            with open(os.path.join(tmp, "saved_model.pb"), "wb") as f:
                f.write(b"half")
            print(tmp, flush=True)
            time.sleep(60)

        versioning.publish({base!r}, build)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        tmp = proc.stdout.readline().strip()
        assert os.path.isfile(os.path.join(tmp, "saved_model.pb"))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert versioning.list_versions(base) == [1]
    assert os.path.basename(tmp).startswith(versioning.TMP_PREFIX)  # not a number: TF Serving skips it
    version, path = versioning.publish(base, lambda d: open(os.path.join(d, "ok"), "w").close())
    assert version == 2 and os.listdir(path) == ["ok"]
    assert not os.path.exists(tmp)  # stale temp folder of the dead writer removed
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_publish_never_overwrites(tmp_path):
    base = str(tmp_path)
    assert versioning.publish(base, lambda d: None)[0] == 1
    with pytest.raises(FileExistsError, match="never overwritten"):
        versioning.publish(base, lambda d: None, version=1)
    os.makedirs(os.path.join(base, "5"))  # empty folder: os.rename would replace it
    assert versioning.publish(base, lambda d: None)[0] == 6
    with pytest.raises(ValueError, match="version"):
        versioning.publish(base, lambda d: None, version=0)


# === TFLite ===


def test_tflite_files_pass_parity(exported, samples):
    from ai_edge_litert.interpreter import Interpreter

    folder = exported["tflite"]
    assert folder == os.path.join(exported["export_dir"], "tflite", NAME, "1")
    report = json.load(open(os.path.join(folder, tflite.REPORT_FILE)))
    assert report["passed"] and [f["quantization"] for f in report["files"]] == ["float32", "float16", "int8"]
    data, reference = samples
    images = np.stack([export_lib.smp.decode_batch([b], (64, 32))[0] for b in data])
    sizes = {}
    for q, need in (("float32", 0.9999), ("float16", 0.999), ("int8", 0.99)):
        path = os.path.join(folder, f"{NAME}_{q}.tflite")
        sizes[q] = os.path.getsize(path)
        interpreter = Interpreter(model_path=path)
        inp = interpreter.get_input_details()[0]
        assert inp["dtype"] == np.float32 and list(inp["shape_signature"]) == [1, 64, 32, 3]
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        assert not ops & {"SPACE_TO_BATCH_ND", "REVERSE_V2"}, ops  # dilated convs whole, the flip in conv1
        interpreter.resize_tensor_input(inp["index"], [len(images), 64, 32, 3])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], images)
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-3)
        cosine = np.sum(_normalise(out) * reference, axis=1)
        assert cosine.min() >= need, (q, cosine.min())
    # Weights are inside the files (the failure mode is a tiny file): fp32 ≈ weights, then ½, then ¼.
    assert sizes["float32"] >= 0.9 * exported["parameter_bytes"]
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]


def test_tflite_file_with_nan_output_is_an_error_and_removed(exported, samples, monkeypatch, tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None, 64, 32, 3], tf.float32)])
    def broken(x):  # what a converter fed untracked weights produced: right shape, NaN values
        return {sig.OUTPUT: tf.reduce_mean(x, [1, 2, 3])[:, None] * float("nan") + tf.zeros([1, 128])}

    nan_model = tf.lite.TFLiteConverter.from_concrete_functions([broken.get_concrete_function()], broken).convert()
    monkeypatch.setattr(tflite, "freeze", lambda module: None)
    monkeypatch.setattr(tflite, "convert", lambda frozen, q, calibration=None: nan_model)
    data, reference = samples
    images = export_lib.smp.decode_batch(data, (64, 32))
    with pytest.raises(tflite.TFLiteParityError, match="non-finite"):
        tflite.write_tflite_files(None, str(tmp_path), images, reference, quantizations=("float32",), prefix="m")
    assert sorted(os.listdir(tmp_path)) == [tflite.REPORT_FILE]
    report = json.load(open(tmp_path / tflite.REPORT_FILE))
    assert report["passed"] is False and report["files"][0]["finite"] is False


def test_tflite_parity_rejects_another_models_numbers(exported, samples):
    data, reference = samples
    images = export_lib.smp.decode_batch(data, (64, 32))
    path = os.path.join(exported["tflite"], f"{NAME}_float32.tflite")
    assert tflite.parity(path, images, reference, "float32")["passed"]
    wrong = tflite.parity(path, images, np.roll(reference, 1, axis=0), "float32")
    assert not wrong["passed"] and wrong["min_cosine"] < 0.9999


# === Client against a test double of TF Serving ===


class PredictionServiceDouble(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TEST DOUBLE of TF Serving's PredictionService (no TF Serving binary is installable here).

    Serves one SavedModel version with `tf.saved_model.load` and follows TF Serving's
    Predict contract: model name / version / signature lookup, input names must match
    the signature exactly, dtypes are checked, graph errors become INVALID_ARGUMENT.
    Also answers TF Serving's REST `:predict` (row and columnar JSON forms) via `rest_predict`.
    """

    def __init__(self, name, version, saved_model):
        self.name, self.version = name, version
        self.signatures = saved_model.signatures  # tf.saved_model.load(<base_path>/<version>)

    def run(self, name, version, signature_name, inputs):
        """Returns (outputs dict of numpy, None) or (None, (grpc.StatusCode, message))."""
        if name != self.name or (version is not None and version != self.version):
            return None, (grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {name} version {version}")
        fn = self.signatures.get(signature_name or sig.SIGNATURE_BYTES)
        if fn is None:
            return None, (grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature name: "{signature_name}" not found')
        specs = fn.structured_input_signature[1]
        if set(inputs) != set(specs):
            return None, (
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input names {sorted(inputs)} do not match the signature's {sorted(specs)}",
            )
        try:
            args = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
            return {k: v.numpy() for k, v in fn(**args).items()}, None
        except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
            return None, (grpc.StatusCode.INVALID_ARGUMENT, getattr(e, "message", str(e)))

    def Predict(self, request, context):
        version = request.model_spec.version.value if request.model_spec.HasField("version") else None
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs, error = self.run(request.model_spec.name, version, request.model_spec.signature_name, inputs)
        if error:
            context.abort(*error)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = request.model_spec.signature_name or sig.SIGNATURE_BYTES
        for k, v in outputs.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return response

    def rest_predict(self, path, body):
        """(HTTP status, JSON dict) for a POST to `path` with the parsed JSON `body`."""
        m = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", path)
        if not m:
            return 404, {"error": f"Malformed request: POST {path}"}
        signature_name = body.get("signature_name", sig.SIGNATURE_BYTES)
        fn = self.signatures.get(signature_name)
        names = list(fn.structured_input_signature[1]) if fn else []
        decode = _json_values
        if "instances" in body:
            rows = body["instances"]
            named = all(isinstance(r, dict) and "b64" not in r for r in rows) and rows
            inputs = (
                {k: decode([r[k] for r in rows]) for k in rows[0]}
                if named
                else {names[0] if names else "": decode(rows)}
            )
        elif "inputs" in body:
            cols = body["inputs"]
            inputs = (
                {k: decode(v) for k, v in cols.items()}
                if isinstance(cols, dict) and "b64" not in cols
                else {names[0] if names else "": decode(cols)}
            )
        else:
            return 400, {"error": "JSON object must contain 'instances' or 'inputs'"}
        version = int(m.group(2)) if m.group(2) else None
        outputs, error = self.run(m.group(1), version, signature_name, inputs)
        if error:
            return (404 if error[0] == grpc.StatusCode.NOT_FOUND else 400), {"error": error[1]}
        if "instances" in body:
            (only,) = outputs.values()
            return 200, {"predictions": only.tolist()}
        return 200, {"outputs": {k: v.tolist() for k, v in outputs.items()}}


def _json_values(value):
    """TF Serving's JSON value rules: {"b64": ...} is binary, lists nest."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_json_values(v) for v in value]
    return value


@pytest.fixture(scope="module")
def servers(loaded):
    """gRPC and REST test doubles on 127.0.0.1 (ephemeral ports), stopped after the tests."""
    double = PredictionServiceDouble(NAME, 1, loaded)
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(double, grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length))
                status, payload = double.rest_predict(self.path, body)
            except ValueError as e:
                status, payload = 400, {"error": f"JSON parse error: {e}"}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"grpc": f"127.0.0.1:{grpc_port}", "rest": f"127.0.0.1:{http_server.server_address[1]}"}
    finally:
        http_server.shutdown()
        http_server.server_close()
        thread.join(timeout=10)
        grpc_server.stop(grace=None).wait(timeout=10)


@pytest.mark.parametrize("protocol, form", [("rest", "instances"), ("rest", "inputs"), ("grpc", None)])
def test_client_requests_are_accepted_by_the_service(servers, samples, protocol, form):
    data, reference = samples
    kwargs = dict(rest_form=form) if form else {}
    out = client.embed(servers[protocol], NAME, data, protocol=protocol, batch_size=4, **kwargs)
    assert out.shape == (len(data), 128) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference, atol=1e-5)
    one = client.embed(servers[protocol], NAME, data[:1], protocol=protocol, version=1, **kwargs)
    np.testing.assert_allclose(one, reference[:1], atol=1e-5)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_client_reports_server_errors(servers, samples, protocol):
    data, _ = samples
    with pytest.raises(RuntimeError, match="not an encoded JPEG/PNG"):
        client.embed(servers[protocol], NAME, [data[0], b"garbage"], protocol=protocol)
    with pytest.raises(RuntimeError, match="(404|NOT_FOUND)"):
        client.embed(servers[protocol], NAME, data[:1], protocol=protocol, version=9)


def test_client_top_matches_against_a_gallery(servers, samples, tmp_path, capsys):
    from absl import flags

    data, reference = samples
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for i, b in enumerate(data):
        ext = "jpg" if b.startswith(b"\xff\xd8") else "png"
        (gallery / f"g{i}.{ext}").write_bytes(b)
    query = tmp_path / "query.jpg"
    query.write_bytes(data[2])
    order, scores = client.top_matches(reference[2:3], reference, k=3)
    assert order[0, 0] == 2 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    brute = sorted(range(len(data)), key=lambda j: -float(reference[2] @ reference[j]))[:3]
    assert list(order[0]) == brute

    if "server" not in flags.FLAGS:
        client.define_flags()
    argv = [
        "client",
        f"--server={servers['rest']}",
        "--protocol=rest",
        f"--images={query}",
        f"--gallery={gallery}",
        "--top_k=2",
        f"--model_name={NAME}",
    ]
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        client.main(argv[:1])
    finally:
        flags.FLAGS.unparse_flags()
    line = json.loads(capsys.readouterr().out)
    assert line["query"] == str(query)
    assert os.path.basename(line["matches"][0]["image"]) == sorted(os.listdir(gallery))[2]
    assert line["matches"][0]["cosine"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="host:port"):
        client.rest_url("localhost", NAME)

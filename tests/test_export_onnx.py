"""ONNX export (`python -m export --onnx`): tf2onnx file checked with ONNX Runtime against Keras."""

import json
import os
import sys

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from sal_tf.export import export_lib, onnx_export, versioning
from sal_tf.export import saved_model as sm
from tests.conftest import run_cmd, tiny_model

NAME = "sal"
SIZE = (64, 32)


def _keras_reference(model, images):
    e = np.asarray(model(images, training=False)["embedding"], np.float64)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _images(count, seed):
    """Decoded synthetic person images float32 [count, 64, 32, 3] (other than the export's samples)."""
    data = [b for _, b in export_lib.smp.synthetic_images(count, seed=seed)]
    return export_lib.smp.decode_batch(data, SIZE)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(5)
    return tiny_model(751)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    export_dir = str(tmp_path_factory.mktemp("exports"))
    result = export_lib.export(model, export_dir, NAME, onnx_file=True, source="test")
    return dict(result, export_dir=export_dir)


def test_onnx_file_layout_and_parity_report(exported):
    folder = os.path.join(exported["export_dir"], "onnx", NAME, "1")
    assert exported["onnx"] == os.path.join(folder, onnx_export.MODEL_FILE)
    assert sorted(os.listdir(folder)) == ["model.onnx", "parity.json", "samples"]
    report = exported["onnx_report"]
    assert report == json.load(open(os.path.join(folder, onnx_export.REPORT_FILE)))
    assert report["passed"] and report["problems"] == []
    assert report["min_cosine"] >= 0.9999 and report["max_abs_diff"] <= 1e-4
    assert report["batches"] == [8, 1, 7] and report["opset"] == onnx_export.OPSET
    # The weights are inside the file (a converter that loses them writes a tiny file).
    assert os.path.getsize(exported["onnx"]) >= 0.9 * exported["parameter_bytes"]
    proto = onnx.load(exported["onnx"])
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["image_size"] == "64,32" and meta["embedding_dim"] == "128" and meta["source"] == "test"


def test_onnxruntime_matches_keras_on_new_images(exported, model):
    images = _images(5, seed=21)
    sess = ort.InferenceSession(exported["onnx"], providers=["CPUExecutionProvider"])
    (out,) = sess.run(["embedding"], {"images": images})
    reference = _keras_reference(model, images)
    cos = onnx_export.cosine(out, reference)
    assert cos.min() >= 0.9999 and np.abs(out - reference).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_dynamic_batch_of_1_and_of_7(exported, model):
    sess = ort.InferenceSession(exported["onnx"], providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "images" and inp.type == "tensor(float)"
    assert not isinstance(inp.shape[0], int) and inp.shape[1:] == [64, 32, 3]
    images = _images(7, seed=4)
    (seven,) = sess.run(["embedding"], {"images": images})
    ones = np.concatenate([sess.run(["embedding"], {"images": images[i : i + 1]})[0] for i in range(7)])
    assert seven.shape == ones.shape == (7, 128)
    np.testing.assert_allclose(seven, ones, atol=1e-5)
    np.testing.assert_allclose(seven, _keras_reference(model, images), atol=1e-4)


def test_broken_conversion_is_caught_by_parity_and_not_written(model, monkeypatch, tmp_path):
    logits = keras.Model(model.input, model.output["logits"])  # a converter fed the classifier output
    real_convert = onnx_export.convert
    monkeypatch.setattr(
        onnx_export, "convert", lambda module, **kw: real_convert(sm.EmbeddingServingModule(logits, SIZE), **kw)
    )
    with pytest.raises(onnx_export.ONNXParityError, match=r"output .*expected float32 \[B, 128\]"):
        export_lib.export(model, str(tmp_path), NAME, onnx_file=True, num_samples=3)
    written = [os.path.join(r, f) for r, _, files in os.walk(tmp_path) for f in files]
    assert not [f for f in written if ".onnx" in f], written
    assert not os.listdir(tmp_path / "onnx" / NAME)  # no version, not even a temporary folder
    assert versioning.list_versions(tmp_path / NAME) == [1]  # the SavedModel is still published


def test_file_with_another_models_numbers_is_deleted_and_reported(model, tmp_path):
    keras.utils.set_random_seed(99)  # right shapes, wrong numbers (e.g. another checkpoint's weights)
    other = tiny_model(751).embedding_model()
    images = _images(3, seed=8)
    reference = _keras_reference(model, images).astype(np.float32)
    with pytest.raises(onnx_export.ONNXParityError, match="min cosine"):
        onnx_export.write_onnx_file(sm.EmbeddingServingModule(other, SIZE), str(tmp_path), images, reference)
    assert os.listdir(tmp_path) == ["parity.json"]
    report = json.load(open(tmp_path / "parity.json"))
    assert report["passed"] is False and report["min_cosine"] < 0.9999 and report["batches"] == [3, 1, 7]


def _verify(path):
    return run_cmd([sys.executable, "-m", "export.verify", path], timeout=120)


def test_verify_checks_the_onnx_file_without_tensorflow(exported, tmp_path):
    run = _verify(os.path.dirname(exported["onnx"]))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    names = {c["check"]: c["passed"] for c in report["checks"]}
    assert report["passed"] and names["ONNX Runtime only (TensorFlow not imported)"]
    assert names["rejects wrong image size"] and names["onnxruntime vs Keras"]
    # A copy whose stored reference was tampered with fails (exit 1).
    folder = tmp_path / "tampered"
    os.makedirs(folder / "samples")
    src = os.path.dirname(exported["onnx"])
    for f in ("model.onnx", "samples/images.npy"):
        (folder / f).write_bytes(open(os.path.join(src, f), "rb").read())
    reference = np.load(os.path.join(src, "samples", "reference_embeddings.npy"))
    np.save(folder / "samples" / "reference_embeddings.npy", -reference)
    run = _verify(str(folder / "model.onnx"))
    assert run.returncode == 1 and "onnxruntime vs Keras" in run.stderr


def test_verify_names_a_missing_onnx_file(tmp_path):
    run = _verify(str(tmp_path / "nothing.onnx"))
    assert run.returncode == 2 and run.stderr.startswith("error:") and "nothing.onnx" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_cli_onnx_flag_writes_the_checked_file(model, tmp_path):
    path = str(tmp_path / "m.keras")
    model.save(path)
    cmd = [sys.executable, "-m", "export", f"--model={path}", f"--export_dir={tmp_path / 'e'}", "--onnx", "--noverify"]
    run = run_cmd(cmd, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["onnx"] == str(tmp_path / "e" / "onnx" / "sal" / "1" / "model.onnx")
    assert result["onnx_report"]["passed"] and os.path.isfile(result["onnx"])

"""`python -m export --nchw`: the model taking PyTorch re-ID input [B, 3, H, W], checked against the SavedModel."""

import json
import os
import sys

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from sal_tf.export import export_lib, nchw, onnx_export
from sal_tf.inference.boxes import BoxEncoder
from sal_tf.inference.embedder import KerasEmbedder
from sal_tf.inference.torch_layout import to_nchw
from tests.conftest import run_cmd, tiny_model

NAME = "sal"
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # torchvision's ImageNet values


def torchvision_preprocess(images):
    """What a PyTorch re-ID tracker feeds its model (BoxMOT's get_crops): RGB / 255, normalised, NCHW."""
    return ((np.asarray(images, np.float64) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    return tiny_model(20)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    export_dir = str(tmp_path_factory.mktemp("exports"))
    result = export_lib.export(model, export_dir, NAME, nchw_files=True, source="test")
    return dict(result, export_dir=export_dir)


@pytest.fixture(scope="module")
def keras_encoder(model):
    return BoxEncoder(KerasEmbedder(model))


@pytest.fixture(scope="module")
def images():
    """Decoded synthetic person images uint8 [5, 64, 32, 3], other than the export's samples."""
    data = [b for _, b in export_lib.smp.synthetic_images(5, seed=31)]
    return np.round(export_lib.smp.decode_batch(data, (64, 32))).astype(np.uint8)


def test_folder_parity_report_and_input_spec(exported):
    folder = os.path.join(exported["export_dir"], nchw.FOLDER, NAME, "1")
    assert exported["nchw"] == os.path.join(folder, "model.onnx")
    assert sorted(os.listdir(folder)) == ["model.onnx", "parity.json", "samples"]
    report = exported["nchw_report"]["onnx"]
    assert report == json.load(open(os.path.join(folder, "parity.json")))
    assert report["passed"] and report["reference"] == nchw.REFERENCE_LABEL and report["batches"] == [8, 1, 7]
    assert report["min_cosine"] >= 0.9999 and report["max_abs_diff"] <= 1e-4
    sess = ort.InferenceSession(exported["nchw"], providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("images", "tensor(float)", [3, 64, 32])
    assert not isinstance(inp.shape[0], int) and out.name == "embedding" and out.shape[1:] == [128]
    meta = {p.key: p.value for p in onnx.load(exported["nchw"]).metadata_props}
    assert meta["layout"] == "NCHW" and "ImageNet mean (0.485, 0.456, 0.406)" in meta["input"]
    assert os.path.getsize(exported["nchw"]) >= 0.9 * exported["parameter_bytes"]  # the weights are inside


def test_pytorch_style_input_reproduces_the_model(exported, keras_encoder, images):
    want = keras_encoder.embed_crops(images.astype(np.float32))  # = the SavedModel within 1e-5
    sess = ort.InferenceSession(exported["nchw"], providers=["CPUExecutionProvider"])
    x = torchvision_preprocess(images)
    (got,) = sess.run(["embedding"], {"images": x})
    ones = np.concatenate([sess.run(["embedding"], {"images": x[i : i + 1]})[0] for i in range(len(x))])
    for out in (got, ones):
        assert onnx_export.cosine(out, want).min() >= 0.9999 and np.abs(out - want).max() <= 1e-4
    # Without the normalisation the numbers differ: the transform really is inside the graph.
    (raw,) = sess.run(["embedding"], {"images": images.astype(np.float32).transpose(0, 3, 1, 2)})
    assert onnx_export.cosine(raw, want).min() < 0.999


def _frame_and_boxes(images):
    frame = np.kron(images.transpose(1, 0, 2, 3).reshape(64, 160, 3), np.ones((2, 2, 1), np.uint8))  # 128×320
    return frame, np.array([[0, 0, 60, 128], [70, 5, 140, 120], [150, 20, 320, 128]])


def test_box_encoder_runs_the_nchw_file(exported, keras_encoder, images):
    frame, boxes = _frame_and_boxes(images)
    encoder = BoxEncoder(exported["nchw"])
    assert encoder.kind == "onnx" and encoder.backend.channels_first and encoder.image_size == (64, 32)
    got, want = encoder(frame, boxes), keras_encoder(frame, boxes)
    assert onnx_export.cosine(got, want).min() >= 0.9999 and np.abs(got - want).max() <= 1e-4


def test_nchw_tflite_file(model, keras_encoder, images, tmp_path):
    module = export_lib.sm.EmbeddingServingModule(model.embedding_model(), (64, 32))
    samples = images[:3].astype(np.float32)
    reference = keras_encoder.embed_crops(samples)
    report = nchw.write_tflite_file(nchw.NCHWServingModule(module), str(tmp_path), to_nchw(samples), reference, NAME)
    path = str(tmp_path / f"{NAME}_nchw_float32.tflite")
    entry = report["files"][0]
    assert os.path.isfile(path) and entry["passed"] and entry["input"]["shape_signature"] == [-1, 3, 64, 32]
    assert json.load(open(tmp_path / "parity.json"))["reference"] == nchw.REFERENCE_LABEL
    frame, boxes = _frame_and_boxes(images)
    encoder = BoxEncoder(path)
    assert encoder.kind == "tflite" and encoder.backend.channels_first
    got, want = encoder(frame, boxes), keras_encoder(frame, boxes)
    assert onnx_export.cosine(got, want).min() >= 0.9999 and np.abs(got - want).max() <= 1e-4


def test_export_verify_accepts_the_nchw_folder(exported):
    run = run_cmd([sys.executable, "-m", "export.verify", os.path.dirname(exported["nchw"])], timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    checks = {c["check"]: c["passed"] for c in json.loads(run.stdout)["checks"]}
    assert checks["input images [B, 3, H, W] float32 → embedding [B, D], B dynamic"]
    assert checks["rejects wrong image size"] and checks["ONNX Runtime only (TensorFlow not imported)"]

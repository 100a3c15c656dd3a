"""sal_tf.load_model: the three saved forms give the same embeddings as evaluation and serving."""

import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf

import sal_tf
from sal_tf.evaluation import extract_features
from sal_tf.export import export_lib
from sal_tf.inference import loading
from sal_tf.inference.embedder import as_image_batch
from tests.conftest import run_cmd, tiny_model


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    """One tiny model saved as a .keras file, a model_dir and an exported SavedModel."""
    base = tmp_path_factory.mktemp("forms")
    model = tiny_model(10)
    keras_file = str(base / "model.keras")
    model.save(keras_file)
    model_dir = base / "run"
    model_dir.mkdir()
    shutil.copy(keras_file, model_dir / "stage1.keras")
    exported = export_lib.export(model, str(base / "exports"), "sal", verify=False)
    paths = {"keras": keras_file, "model_dir": str(model_dir), "saved_model": exported["saved_model"]}
    embedders = {form: sal_tf.load_embedder(path) for form, path in paths.items()}
    return {"model": model, "paths": paths, "embedders": embedders}


def _images(seed, n=5, size=(64, 32)):
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3)).astype(np.uint8)


def test_import_sal_tf_does_not_import_tensorflow():
    code = "import sys, sal_tf; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = run_cmd([sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow  # builds, saves, exports and loads a tiny model three ways (~30-60 s on 2 cores)
def test_three_forms_give_the_same_embeddings(forms):
    model = forms["model"]
    images = _images(0)
    odd_size = _images(1, n=3, size=(100, 45))  # resized bilinearly, as serving does
    ds = tf.data.Dataset.from_tensor_slices(images.astype(np.float32)).batch(2)
    reference = extract_features(model, ds, verbose=False)  # evaluation's numbers
    loaded = forms["embedders"]["saved_model"].loaded
    assert {"serving_default", "serving_images"} <= set(loaded.signatures)
    serving = loaded.signatures["serving_images"](images=tf.constant(images))["embedding"].numpy()
    serving_odd = loaded.signatures["serving_images"](images=tf.constant(odd_size))["embedding"].numpy()
    raw = model(images.astype(np.float32))["embedding"] + model(images[:, :, ::-1].astype(np.float32))["embedding"]
    flipped = tf.math.l2_normalize(raw / 2.0, axis=-1).numpy()  # extract_features(..., flip=True)
    for form, embedder in forms["embedders"].items():
        assert embedder.kind == ("saved_model" if form == "saved_model" else "keras")
        assert embedder.image_size == (64, 32) and embedder.embedding_dim == 128
        for x in (images, images.astype(np.float32)):
            out = embedder(x, batch_size=2)
            assert out.dtype == np.float32 and out.shape == (5, 128)
            np.testing.assert_allclose(out, reference, atol=1e-5)
            np.testing.assert_allclose(out, serving, atol=1e-5)
        np.testing.assert_allclose(embedder(odd_size), serving_odd, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(embedder(images), axis=1), 1.0, atol=1e-5)
        tol = 1e-5 if embedder.kind == "keras" else 1e-2  # a SavedModel averages normalised outputs
        np.testing.assert_allclose(embedder(images, flip=True), flipped, atol=tol)
        assert embedder(images[:0]).shape == (0, 128)
    assert forms["embedders"]["model_dir"].source.endswith("stage1.keras")


def test_export_parent_folder_resolves_to_its_highest_version(tmp_path):
    for version in ("1", "7", "12"):
        (tmp_path / version).mkdir()
    for version in ("1", "7"):
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    # "12" holds no saved_model.pb: not a version
    assert loading.resolve_model_path(str(tmp_path)) == ("saved_model", str(tmp_path / "7"))
    assert loading.resolve_model_path(str(tmp_path / "1")) == ("saved_model", str(tmp_path / "1"))


@pytest.mark.slow  # shares the module's model fixture
def test_attention_of_keras_forms(forms):
    embedder = forms["embedders"]["keras"]
    images = _images(2, n=3)
    att = embedder.attention(images)
    h, w = embedder.attention_grid
    assert att.shape == (3, 3, h * w) and embedder.attention_stages == ("stage4", "stage5", "stage6")
    np.testing.assert_allclose(att, forms["model"](images.astype(np.float32))["attention"].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="SavedModel"):
        forms["embedders"]["saved_model"].attention(images)


def test_find_model_file_picks_the_highest_stage(tmp_path):
    for n in ("stage1.keras", "stage2.keras", "stage10.keras", "stage3.keras.tmp1.keras", "notes.txt"):
        (tmp_path / n).write_text("x")
    assert loading.find_model_file(model_dir=str(tmp_path)) == str(tmp_path / "stage10.keras")
    assert loading.resolve_model_path(str(tmp_path)) == ("keras", str(tmp_path / "stage10.keras"))
    with pytest.raises(ValueError, match="exactly one"):
        loading.find_model_file()
    with pytest.raises(FileNotFoundError, match="no stage1.keras"):
        loading.find_model_file(model_dir=str(_empty(tmp_path)))


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("kind", ["missing", "text_file", "empty_folder"])
def test_bad_model_paths_name_the_path_and_the_three_forms(tmp_path, kind):
    path = {"missing": tmp_path / "nope", "text_file": tmp_path / "notes.txt", "empty_folder": _empty(tmp_path)}[kind]
    if kind == "text_file":
        path.write_text("x")
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        sal_tf.load_embedder(str(path))
    message = str(info.value)
    assert str(path) in message
    for form in ("--model_dir", ".keras file", "SavedModel"):
        assert form in message


def test_bad_image_batches_are_rejected():
    with pytest.raises(ValueError, match=r"\[batch, height, width, 3\]"):
        as_image_batch(np.zeros((64, 32, 3), np.uint8), (64, 32))
    with pytest.raises(ValueError, match="dtype"):
        as_image_batch(np.zeros((1, 64, 32, 3), bool), (64, 32))
    x = np.random.default_rng(0).integers(0, 256, (2, 10, 6, 3)).astype(np.uint8)
    resized = as_image_batch(x, (20, 12))
    np.testing.assert_array_equal(resized.numpy(), tf.image.resize(x, (20, 12), method="bilinear").numpy())
    assert as_image_batch(x, (10, 6)).dtype == tf.float32

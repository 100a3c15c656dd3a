"""distance_matrix, extract_features and the rank-list pictures."""

import collections
import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from sal_tf.evaluation import distance_matrix, extract_features, rank_list_image, save_rank_lists


# ------------------------------------------------------------------- distance_matrix
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_pairwise_distance_matches_brute_force(metric):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((13, 7))
    g = rng.standard_normal((29, 7))
    g[3] = 0.0  # a zero row: cosine distance 1
    diff = np.linalg.norm(q[:, None] - g[None], axis=-1)
    cos = (q @ g.T) / np.maximum(np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(g, axis=1)[None], 1e-12)
    expected = {"euclidean": diff, "sqeuclidean": diff**2, "cosine": 1 - cos}[metric]
    got = distance_matrix(tf.constant(q, tf.float32), g, metric=metric, block_size=4)
    assert got.dtype == np.float32 and got.shape == (13, 29)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    if metric == "cosine":
        np.testing.assert_allclose(got[:, 3], 1.0)


def test_pairwise_distance_self_is_zero_and_nonnegative():
    x = np.random.default_rng(1).standard_normal((20, 64)).astype(np.float32) * 100
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        d = distance_matrix(x, x, metric)
        assert (d >= 0).all()
    np.testing.assert_allclose(np.diag(distance_matrix(x, x, "cosine")), 0.0, atol=1e-6)


def test_pairwise_distance_rejects_bad_input():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="metric"):
        distance_matrix(x, x, metric="l1")
    with pytest.raises(ValueError, match="feature dimension"):
        distance_matrix(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="2-D"):
        distance_matrix(np.zeros(4), x)
    with pytest.raises(ValueError, match="NaN"):
        distance_matrix(np.full((2, 4), np.nan), x)


# -------------------------------------------------------------------- extract_features
def _tiny_model(h=6, w=5, dim=4):
    inputs = keras.Input((h, w, 3))
    flat = keras.layers.Flatten()(inputs)  # position-sensitive: a flip changes the output
    emb = keras.layers.Dense(dim, name="embedding")(flat)
    logits = keras.layers.Dense(3)(emb)
    return keras.Model(inputs, {"embedding": emb, "logits": logits})


def _numpy_embedding(model, images):
    kernel, bias = model.get_layer("embedding").get_weights()
    return images.reshape(len(images), -1) @ kernel + bias


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_extract_features_flip_and_normalize(flip, normalize):
    keras.utils.set_random_seed(0)
    model = _tiny_model()
    images = np.random.default_rng(0).random((10, 6, 5, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(images).batch(4)  # last batch has 2
    got = extract_features(model, ds, flip=flip, normalize=normalize, verbose=False)
    expected = _numpy_embedding(model, images)
    if flip:
        expected = (expected + _numpy_embedding(model, images[:, :, ::-1])) / 2
    if normalize:
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert got.dtype == np.float32 and got.shape == (10, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_extract_features_accepts_tuples_and_rejects_bad_input():
    model = _tiny_model()
    images = np.ones((3, 6, 5, 3), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, np.arange(3))).batch(2)
    assert extract_features(model, ds, verbose=True).shape == (3, 4)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        extract_features(model, images)
    with pytest.raises(ValueError, match="batch"):
        extract_features(model, tf.data.Dataset.from_tensor_slices(images))
    bad = keras.Model(model.inputs, {"feat": model.outputs[0]})
    with pytest.raises(ValueError, match="embedding"):
        extract_features(bad, tf.data.Dataset.from_tensor_slices(images).batch(2), verbose=False)
    with pytest.raises(ValueError, match="no batches"):
        extract_features(model, tf.data.Dataset.from_tensor_slices(images[:0]).batch(2), verbose=False)


# -------------------------------------------------------------------------- rank lists
def _cell_x(t, w, border):
    """Left edge of cell t (0 = query) in a rank-list row."""
    cw = w + 2 * border
    return 0 if t == 0 else cw + 4 * border + (t - 1) * (cw + border)


def test_rank_list_image_rejects_mismatched_matches():
    q = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="matches"):
        rank_list_image(q, [q, q], [True])
    with pytest.raises(ValueError, match="border"):
        rank_list_image(q, [q], [True], border=0)


Record = collections.namedtuple("Record", "path pid camid")


def _write(tmp_path, name, value):
    path = str(tmp_path / name)
    tf.io.write_file(path, tf.io.encode_png(np.full((16, 8, 3), value, np.uint8)))
    return path


def test_save_rank_lists_errors(tmp_path):
    rec = [Record(str(tmp_path / "missing.png"), 1, 0)]
    g = [Record(str(tmp_path / "missing.png"), 1, 1)]
    with pytest.raises(FileNotFoundError, match="missing.png"):
        save_rank_lists(str(tmp_path / "x.png"), np.zeros((1, 1)), rec, g, [0])
    with pytest.raises(ValueError, match="distmat"):
        save_rank_lists(str(tmp_path / "x.png"), np.zeros((2, 1)), rec, g, [0])
    with pytest.raises(ValueError, match="q_indices"):
        save_rank_lists(str(tmp_path / "x.png"), np.zeros((1, 1)), rec, g, [3])


@pytest.mark.parametrize("flip", [False, True])
def test_extract_features_keeps_no_reference_to_the_model(flip):
    """An evaluated model is freed after `del` + gc (the ablation evaluates ~13 in one process)."""
    images = np.random.default_rng(3).random((5, 6, 5, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(images).batch(2)
    model = _tiny_model()
    first = extract_features(model, ds, flip=flip, verbose=False)
    np.testing.assert_array_equal(extract_features(model, ds, flip=flip, verbose=False), first)  # cached path
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, "extract_features kept the model alive"
    # A fresh model of the same shapes gets its own embedding, not the freed model's.
    other = _tiny_model()
    expected = _numpy_embedding(other, images)
    if flip:
        expected = (expected + _numpy_embedding(other, images[:, :, ::-1])) / 2
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(extract_features(other, ds, flip=flip, verbose=False), expected, rtol=1e-4, atol=1e-5)

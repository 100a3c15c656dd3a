"""extract_features: flip / normalize against a NumPy model, input checks, no reference kept to the model."""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from sal_tf.evaluation import extract_features


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

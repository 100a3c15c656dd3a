"""`sal_tf.inference.boxes.BoxEncoder`: boxes of frames → embeddings, against embedding each crop directly."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sal_tf.export import onnx_export
from sal_tf.inference.boxes import BoxEncoder, pixel_boxes
from sal_tf.inference.embedder import KerasEmbedder
from sal_tf.inference.resize import swap_channels
from tests.conftest import tiny_model

SIZE = (64, 32)


@pytest.fixture(scope="module")
def embedder():
    keras.utils.set_random_seed(11)
    return KerasEmbedder(tiny_model(10), source="tiny")


@pytest.fixture(scope="module")
def encoder(embedder):
    return BoxEncoder(embedder)


@pytest.fixture(scope="module")
def frame():
    """A 240×320 RGB frame with structure at several scales (blocks, gradients, noise)."""
    rng = np.random.default_rng(3)
    blocks = np.kron(rng.uniform(0, 255, (12, 16, 3)), np.ones((20, 20, 1)))
    yy, xx = np.mgrid[0:240, 0:320]
    img = 0.6 * blocks + 0.3 * np.stack([xx * 0.8, yy, (xx + yy) * 0.45], -1) + rng.normal(0, 12, (240, 320, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


BOXES = np.array([[10.4, 20.6, 60.2, 150.0], [100, 40, 170, 230], [250.5, 10.5, 300.5, 90.5], [5, 160, 45, 239]])


def test_boxes_of_exactly_the_model_size_give_the_crops_own_embeddings(encoder, embedder, frame):
    boxes = np.array([[0, 0, 32, 64], [40, 100, 72, 164], [288, 176, 320, 240]])
    crops = np.stack([frame[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes])
    np.testing.assert_array_equal(encoder.crops(frame, boxes)[0], crops.astype(np.float32))
    np.testing.assert_array_equal(encoder(frame, boxes), embedder(crops))


def test_other_boxes_match_embedding_each_crop_resized_by_tensorflow(encoder, embedder, frame):
    got = encoder(frame, BOXES)
    pixels, has_area = pixel_boxes(BOXES, frame.shape)
    assert has_area.all() and pixels[0].tolist() == [10, 21, 60, 150]  # rounded to whole pixels
    want = np.concatenate([embedder(frame[None, y1:y2, x1:x2]) for x1, y1, x2, y2 in pixels])
    assert got.shape == (4, 128) and got.dtype == np.float32
    assert onnx_export.cosine(got, want).min() >= 0.9999 and np.abs(got - want).max() <= 2e-3
    crops = encoder.crops(frame, BOXES)[0]
    assert crops.dtype == np.uint8 and crops.shape == (4, *SIZE, 3)
    for crop, (x1, y1, x2, y2) in zip(crops, pixels):  # OpenCV's fixed point: within one grey level of TF
        tf_crop = tf.image.resize(frame[y1:y2, x1:x2], SIZE).numpy()
        assert np.abs(crop - tf_crop).max() < 1.0 and np.abs(crop - tf_crop).mean() < 0.4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_boxes_are_clipped_to_the_frame_and_boxes_without_area_give_zero_rows(encoder, frame):
    boxes = np.array([[-30, -10, 40, 90], [0, 0, 40, 90], [400, 10, 450, 100], [50, 50, 50, 120], [300, 200, 360, 300]])
    got = encoder(frame, boxes)
    np.testing.assert_allclose(got[0], got[1], atol=1e-6)  # the part inside the frame
    assert not got[2].any() and not got[3].any()  # outside the frame; zero width
    np.testing.assert_allclose(got[4], encoder(frame, [[300, 200, 320, 240]])[0], atol=1e-6)
    assert pixel_boxes(boxes, frame.shape)[1].tolist() == [True, True, False, False, True]


def test_no_boxes_give_an_empty_array(encoder, frame):
    for empty in ([], np.zeros((0, 4)), np.zeros(0)):
        out = encoder(frame, empty)
        assert out.shape == (0, 128) and out.dtype == np.float32
    assert [e.shape for e in encoder.embed_frames([frame, frame], [[], BOXES[:2]])] == [(0, 128), (2, 128)]
    assert encoder.embed_frames([], []) == []


def test_bgr_frames_as_opencv_reads_them(encoder, frame):
    np.testing.assert_array_equal(encoder(frame[..., ::-1].copy(), BOXES, channels="bgr"), encoder(frame, BOXES))
    assert not np.allclose(encoder(frame[..., ::-1].copy(), BOXES), encoder(frame, BOXES), atol=1e-3)


def test_float_frames_give_float_crops_of_the_same_pixels(encoder, frame):
    crops = encoder.crops(frame.astype(np.float64), BOXES)[0]
    assert crops.dtype == np.float32
    assert np.abs(crops - encoder.crops(frame, BOXES)[0]).max() <= 1.0  # OpenCV's uint8 fixed point vs float


def test_swap_channels_of_a_batch_and_of_a_strided_view():
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3), np.uint8)
    want = images[..., ::-1].copy()
    np.testing.assert_array_equal(swap_channels(images.copy()), want)
    strided = images.copy()[:, ::2]
    np.testing.assert_array_equal(swap_channels(strided), want[:, ::2])
    np.testing.assert_array_equal(swap_channels(images.astype(np.float32)), want.astype(np.float32))


def test_several_frames_in_one_call_equal_frame_by_frame(encoder, frame):
    frames = [frame, frame[::-1].copy(), frame[:, ::-1].copy()]
    boxes = [BOXES, BOXES[1:3], np.array([[0, 0, 500, 500], [-5, -5, -1, 20]])]
    together = encoder.embed_frames(frames, boxes)
    for f, b, t in zip(frames, boxes, together):
        np.testing.assert_allclose(t, encoder(f, b), atol=1e-6)
    assert not together[2][1].any()


@pytest.mark.parametrize(
    "frame_, boxes, channels, message",
    [
        (np.zeros((240, 320)), BOXES, "rgb", r"frame: expected an image \[height, width, 3\]"),
        (np.zeros((240, 320, 4), np.uint8), BOXES, "rgb", "got shape"),
        (np.zeros((24, 32, 3), np.uint8), BOXES[:, :3], "rgb", r"boxes: expected \[N, 4\]"),
        (np.zeros((24, 32, 3), np.uint8), [[0, 0, np.nan, 4]], "rgb", "NaN"),
        (np.zeros((24, 32, 3), np.uint8), BOXES, "hsv", "channels must be one of"),
    ],
)
def test_bad_input_is_named(encoder, frame_, boxes, channels, message):
    with pytest.raises(ValueError, match=message):
        encoder(frame_, boxes, channels=channels)


def test_a_missing_model_is_named_with_the_forms_accepted(tmp_path):
    for name in ("missing.onnx", "missing.tflite", "missing.keras"):
        with pytest.raises(FileNotFoundError, match=rf"{name}' does not exist; expected a training --model_dir"):
            BoxEncoder(str(tmp_path / name))

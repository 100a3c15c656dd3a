"""tf.data pipelines end to end on tiny PNG/JPEG files: order, labels, augmentation, bad files."""

import os

import numpy as np
import pytest
import tensorflow as tf

from sal_tf.data import pipelines
from sal_tf.data.records import Record
from sal_tf.data.samplers import pk_epoch_indices, random_epoch_indices

SIZE = (48, 24)


def write_images(folder, pids):
    """PNG i: red = i everywhere (identifies the record), green/blue = gradients, blue >= 50."""
    os.makedirs(folder, exist_ok=True)
    records = []
    for i, pid in enumerate(pids):
        h, w = (20, 10) if i % 2 else (26, 14)
        yy, xx = np.mgrid[0:h, 0:w]
        image = np.stack([np.full((h, w), i), yy * 9 % 256, 50 + xx * 10], -1).astype(np.uint8)
        path = os.path.join(folder, f"{i:03d}.png")
        with open(path, "wb") as f:
            f.write(tf.io.encode_png(image).numpy())
        records.append(Record(path, pid, i % 3))
    return records


def record_index(image):
    """Red value of the non-padded pixels (blue >= 50) of an output image."""
    values = np.unique(np.round(image[image[..., 2] >= 49.5][:, 0]))
    assert len(values) == 1, values
    return int(values[0])


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    pids = np.repeat(np.arange(6), [2, 3, 4, 5, 1, 3])  # 18 images, 6 ids
    return write_images(str(tmp_path_factory.mktemp("pngs")), pids.tolist())


def collect(ds):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.stack(images), np.stack(labels)


def test_pk_pipeline_follows_the_sampler_with_labels_and_static_shapes(records):
    ds = pipelines.build_train_dataset(
        records, SIZE, batch_size=6, sampling="pk", num_instances=2, num_replicas=3, seed=5, epoch=2, pad=4
    )
    assert ds.element_spec[0].shape == (6, *SIZE, 3) and ds.element_spec[0].dtype == tf.float32
    assert ds.element_spec[1].shape == (6,) and ds.element_spec[1].dtype == tf.int32
    images, labels = collect(ds)
    expected = pk_epoch_indices([r.pid for r in records], 6, 2, seed=5, epoch=2, num_replicas=3)
    assert len(images) == len(expected) == pipelines.steps_per_epoch(records, 6, "pk", 2, num_replicas=3)
    got = np.array([[record_index(im) for im in batch] for batch in images])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(labels, np.array([r.pid for r in records])[expected])
    assert images.min() >= 0 and images.max() <= 255 and images.max() > 200  # RGB 0..255, not normalised


def test_train_pipeline_is_deterministic_per_epoch_and_augments(records):
    def epoch(e, **kw):
        return collect(pipelines.build_train_dataset(records, SIZE, batch_size=4, seed=1, epoch=e, pad=4, **kw))

    a, la = epoch(0)
    b, lb = epoch(0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    c, _ = epoch(1)
    assert not np.array_equal(a, c)
    order = random_epoch_indices(len(records), 4, seed=1, epoch=0)
    assert [[record_index(im) for im in batch] for batch in a] == order.tolist()
    # Without augmentation every image is exactly the resized file; with it, some are shifted/mirrored.
    plain, _ = epoch(0, flip=False, pad_crop=False)
    resized = {
        i: tf.image.resize(tf.io.decode_png(tf.io.read_file(r.path)), SIZE).numpy() for i, r in enumerate(records)
    }
    for batch_images, batch_order in zip(plain, order):
        for image, i in zip(batch_images, batch_order):
            np.testing.assert_allclose(image, resized[i], atol=1e-4)
    # Each augmented image is the resized one zero-padded, shifted by |dy|, |dx| <= 4 and maybe mirrored.
    found = [matching_augmentation(im, resized[i], pad=4) for bi, bo in zip(a, order) for im, i in zip(bi, bo)]
    assert None not in found
    assert {f for _, _, f in found} == {False, True} and len({(dy, dx) for dy, dx, _ in found}) > 5


def shifted(resized, dy, dx, flip):
    """Reference: zero-pad, crop at (dy, dx), mirror."""
    h, w, _ = resized.shape
    padded = np.zeros((h + 40, w + 40, 3), np.float32)
    padded[20 : 20 + h, 20 : 20 + w] = resized
    out = padded[20 + dy : 20 + dy + h, 20 + dx : 20 + dx + w]
    return out[:, ::-1] if flip else out


def matching_augmentation(image, resized, pad):
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            for flip in (False, True):
                if np.abs(image - shifted(resized, dy, dx, flip)).max() < 1e-3:
                    return dy, dx, flip
    return None


@pytest.mark.parametrize(
    "source,dy,dx,flip",
    [((20, 10), 0, 0, False), ((26, 14), -4, 3, True), ((60, 30), 7, -10, False), ((48, 24), 10, 10, True)],
)
def test_resize_shift_flip_equals_resize_pad_crop_mirror(source, dy, dx, flip):
    image = np.random.default_rng(0).integers(0, 256, (*source, 3)).astype(np.uint8)
    expected = shifted(tf.image.resize(image, SIZE).numpy(), dy, dx, flip)
    got = pipelines.resize_shift_flip(tf.constant(image), SIZE, tf.constant([dy, dx]), tf.constant(flip))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-3)


def test_random_erasing_fills_one_rectangle_of_the_right_area(records):
    images, _ = collect(
        pipelines.build_train_dataset(
            records, SIZE, batch_size=6, seed=0, flip=False, pad_crop=False, random_erasing=True
        )
    )
    fill = np.array(pipelines.ERASING_FILL, np.float32)
    erased = 0
    for image in images.reshape(-1, *SIZE, 3):
        mask = np.all(image == fill, axis=-1)
        if not mask.any():
            continue
        erased += 1
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()  # one filled rectangle
        assert 0.015 <= mask.sum() / mask.size <= 0.42
    assert 0 < erased < len(records)  # p = 0.5


def test_camera_jitter_draws_a_white_balance_and_light_per_seed_within_its_strength():
    grey = tf.fill([16, 8, 3], 128.0)
    out = np.stack([pipelines.camera_jitter(grey, tf.constant([s, 1], tf.int64), 0.2).numpy() for s in range(40)])
    assert out.min() >= 0 and out.max() <= 255
    red_blue = out[:, 0, 0, 0] / out[:, 0, 0, 2]
    assert red_blue.min() < 0.85 and red_blue.max() > 1.18  # warm and cool cameras both drawn
    assert 0.55 < red_blue.min() and red_blue.max() < 1.8  # gains 1 ± 0.2, then saturation × (1 ± 0.2)
    assert out.mean((1, 2, 3)).std() > 5  # light drawn too
    again = pipelines.camera_jitter(grey, tf.constant([3, 1], tf.int64), 0.2).numpy()
    np.testing.assert_array_equal(again, out[3])  # stateless: the seed decides


def test_camera_jitter_in_the_pipeline_keeps_the_crops_draws_and_checks_its_strength(records):
    build = dict(batch_size=6, seed=0, pad=3)
    plain, labels = collect(pipelines.build_train_dataset(records, SIZE, **build))
    jittered, jittered_labels = collect(pipelines.build_train_dataset(records, SIZE, color_jitter=0.2, **build))
    np.testing.assert_array_equal(labels, jittered_labels)
    assert np.array_equal(plain.sum(-1) == 0, jittered.sum(-1) == 0)  # same shifts and mirrors, padding kept
    assert np.abs(jittered - plain).mean() > 3
    with pytest.raises(ValueError, match="color_jitter"):
        pipelines.build_train_dataset(records, SIZE, color_jitter=1.0, **build)


def test_eval_dataset_keeps_order_and_last_partial_batch(records):
    chosen = [records[i] for i in (5, 0, 17, 3, 9, 11, 2)]
    batches = [b.numpy() for b in pipelines.build_eval_dataset(chosen, SIZE, batch_size=4)]
    assert [len(b) for b in batches] == [4, 3]
    images = np.concatenate(batches)
    assert [record_index(im) for im in images] == [5, 0, 17, 3, 9, 11, 2]
    for image, r in zip(images, chosen):
        expected = tf.image.resize(tf.io.decode_png(tf.io.read_file(r.path)), SIZE).numpy()
        np.testing.assert_array_equal(image, expected)


def test_undecodable_images_are_found_when_the_dataset_is_loaded(records, tmp_path):
    """Bad train images are dropped and counted; bad query/gallery images stop the load, naming them."""
    from sal_tf.data.image_check import check_dataset, scan_images
    from sal_tf.data.records import ReIDDataset

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"definitely not an image" * 10)
    truncated = tmp_path / "truncated.jpg"
    jpeg = tf.io.encode_jpeg(np.full((40, 20, 3), 128, np.uint8)).numpy()
    truncated.write_bytes(jpeg[: len(jpeg) // 2])
    bad = [Record(str(broken), 1, 0), Record(str(truncated), 2, 0), Record(str(tmp_path / "gone.png"), 3, 0)]
    mixed = records[:5] + bad[:2] + records[5:] + bad[2:]
    assert scan_images([r.path for r in mixed], verbose=False) == [r.path for r in bad]

    dataset = ReIDDataset("toy", str(tmp_path), train=mixed, query=records[:2], gallery=records[2:])
    checked = check_dataset(dataset, verbose=False)
    assert checked.train == records and checked.skipped_files["undecodable_train"] == 3
    ds = pipelines.build_train_dataset(checked.train, SIZE, batch_size=4, seed=0)
    assert len(collect(ds)[0]) == pipelines.steps_per_epoch(checked.train, 4) == len(records) // 4

    with_bad_gallery = ReIDDataset("toy", str(tmp_path), train=records, query=records[:2], gallery=records[2:] + bad)
    with pytest.raises(
        ValueError, match=r"3 gallery image\(s\) cannot be decoded.*broken\.jpg.*--drop_bad_eval_images"
    ):
        check_dataset(with_bad_gallery, verbose=False)
    dropped = check_dataset(with_bad_gallery, drop_bad_eval_images=True, verbose=False)
    assert dropped.gallery == records[2:] and dropped.skipped_files["undecodable_gallery"] == 3


def test_bad_arguments_are_rejected(records):
    with pytest.raises(ValueError, match="'triplet'"):
        pipelines.build_train_dataset(records, SIZE, sampling="triplet")
    with pytest.raises(ValueError, match=r"P=3 .*num_replicas=2"):
        pipelines.build_train_dataset(records, SIZE, batch_size=6, sampling="pk", num_instances=2, num_replicas=2)
    with pytest.raises(ValueError, match="image_size"):
        pipelines.build_eval_dataset(records, (48,))
    with pytest.raises(ValueError, match=r"pad must be in \[0, 24\)"):
        pipelines.build_train_dataset(records, SIZE, batch_size=4, pad=30)
    with pytest.raises(ValueError, match="at least batch_size=64"):
        pipelines.build_train_dataset(records, SIZE, batch_size=64)

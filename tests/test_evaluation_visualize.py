"""sal_tf.evaluation.visualize: rank-list and attention pictures (matplotlib): the protocol, frame colours,
shapes, PNG files, argument checks."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from sal_tf.evaluation import rank_list_image, save_rank_lists, visualize  # the package's lazy names too
from sal_tf.evaluation.visualize import MATCH_COLOR, MISS_COLOR, QUERY_COLOR, UNKNOWN_COLOR

Record = collections.namedtuple("Record", "path pid camid")


def _count(image, color):
    return int(np.all(image == np.asarray(color, np.uint8), axis=-1).sum())


def _write(tmp_path, name, value):
    path = str(tmp_path / name)
    tf.io.write_file(path, tf.io.encode_png(np.full((16, 8, 3), value, np.uint8)))
    return path


def test_protocol_order_drops_junk_and_same_camera_matches():
    g_pids = [1, -1, 1, 3, 0, 2]
    g_cams = [0, 1, 1, 1, 2, 0]
    dist = [0.0, 0.1, 0.3, 0.2, 0.2, 0.9]
    # query pid 1 cam 0: g0 (same pid + cam) and g1 (junk) left out; g3 / g4 tie → lower row first
    np.testing.assert_array_equal(visualize.protocol_order(dist, 1, 0, g_pids, g_cams, 10), [3, 4, 2, 5])
    np.testing.assert_array_equal(visualize.protocol_order(dist, 1, 0, g_pids, g_cams, 2), [3, 4])


def test_rank_list_image_frames_and_png(tmp_path):
    query = np.full((32, 16, 3), 100, np.uint8)
    gallery = [np.full((64, 32, 3), 200, np.uint8)] * 3  # drawn at the query size
    path = str(tmp_path / "row.png")
    image = visualize.rank_list_image(
        query, gallery, [True, False, None], query_label="pid 1", distances=[0.1, 0.2, 0.3], path=path
    )
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    for color in (MATCH_COLOR, MISS_COLOR, UNKNOWN_COLOR, QUERY_COLOR):
        assert _count(image, color) > 50, color  # a frame of each kind (and legend patches)
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), image)
    no_match = visualize.rank_list_image(query, gallery[:2], [False, False])
    assert _count(no_match, MATCH_COLOR) < _count(image, MATCH_COLOR) / 2  # only the legend's patch
    with pytest.raises(ValueError, match="matches"):
        visualize.rank_list_image(query, gallery, [True])
    with pytest.raises(ValueError, match="border"):
        visualize.rank_list_image(query, gallery[:1], [True], border=0)


def test_save_rank_lists_keeps_its_signature_and_protocol(tmp_path):
    queries = [Record(_write(tmp_path, "q0.png", 200), 1, 0), Record(_write(tmp_path, "q1.png", 201), 2, 1)]
    meta = [(1, 0), (-1, 1), (1, 1), (3, 1), (0, 2), (2, 0)]
    gallery = [Record(_write(tmp_path, f"g{j}.png", 10 * j), p, c) for j, (p, c) in enumerate(meta)]
    distmat = np.array([[0.0, 0.1, 0.3, 0.2, 0.2, 0.9], [0.5, 0.4, 0.3, 0.2, 0.1, 0.0]], np.float32)
    path = str(tmp_path / "sub" / "ranks.png")
    image = visualize.save_rank_lists(path, distmat, queries, gallery, [0, 1], topk=3, image_size=(16, 8), border=2)
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), image)
    only_misses = visualize.save_rank_lists(None, distmat[:1], queries[:1], gallery, [0], topk=2)  # g3, g4: misses
    assert _count(only_misses, MISS_COLOR) > 4 * _count(only_misses, MATCH_COLOR)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        visualize.save_rank_lists(
            None, np.zeros((1, 1)), [Record(str(tmp_path / "missing.png"), 1, 0)], gallery[:1], [0]
        )
    with pytest.raises(ValueError, match="distmat"):
        visualize.save_rank_lists(None, np.zeros((2, 1)), queries[:1], gallery[:1], [0])
    with pytest.raises(ValueError, match="q_indices"):
        visualize.save_rank_lists(None, distmat, queries, gallery, [3])


def test_attention_figure_shapes_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 64, 32, 3)).astype(np.uint8)
    attention = rng.random((2, 3, 32)).astype(np.float32)
    path = str(tmp_path / "att.png")
    picture = visualize.attention_figure(images, attention, (8, 4), labels=["a.jpg", "b.jpg"], path=path)
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert visualize.attention_figure(images[:1], attention[:1], (8, 4)).shape[0] < picture.shape[0]  # one row
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), picture)
    two_stages = visualize.attention_figure(images, attention[:, :2], (8, 4))  # stage6 off: 2 maps
    assert two_stages.shape[1] < picture.shape[1]
    with pytest.raises(ValueError, match=r"h·w=16\] for map_size \(4, 4\)"):
        visualize.attention_figure(images, attention, (4, 4))
    with pytest.raises(ValueError, match="stage_names"):
        visualize.attention_figure(images, attention, (8, 4), stage_names=["a"])


def test_rank_list_image_rejects_mismatched_matches():
    q = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="matches"):
        rank_list_image(q, [q, q], [True])
    with pytest.raises(ValueError, match="border"):
        rank_list_image(q, [q], [True], border=0)


def test_save_rank_lists_errors(tmp_path):
    rec = [Record(str(tmp_path / "missing.png"), 1, 0)]
    g = [Record(str(tmp_path / "missing.png"), 1, 1)]
    with pytest.raises(FileNotFoundError, match="missing.png"):
        save_rank_lists(str(tmp_path / "x.png"), np.zeros((1, 1)), rec, g, [0])
    with pytest.raises(ValueError, match="distmat"):
        save_rank_lists(str(tmp_path / "x.png"), np.zeros((2, 1)), rec, g, [0])
    with pytest.raises(ValueError, match="q_indices"):
        save_rank_lists(str(tmp_path / "x.png"), np.zeros((1, 1)), rec, g, [3])


def test_rank_lists_label_cameras_as_the_file_names_number_them():
    """`c1` in a Market name is "cam 1" (not its 0-based evaluation id); a CSV's own camera is shown as given."""
    from sal_tf.data import Record

    assert visualize._id_text(Record("q/0002_c1s1_000451_03.jpg", 2, 0)) == "pid 2 · cam 1"
    assert visualize._id_text(Record("g/0005_c6_f0046985.jpg", 5, 5)) == "pid 5 · cam 6"
    assert visualize._id_text(Record("crops/a.jpg", 7, 3)) == "pid 7 · cam 3"

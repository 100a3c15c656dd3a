"""Demo dataset generator: deterministic bytes, exact Market-1501 layout, atomic caching."""

import collections
import os
import re
import sys

import numpy as np
import pytest
import tensorflow as tf

from sal_tf.data import demo
from sal_tf.data.market1501 import load_market1501
from tests.conftest import run_cmd

STRICT_MARKET_NAME = re.compile(r"^(-1|\d{4})_c[1-6]s[1-6]_\d{6}_\d{2}\.jpg$")


def tree_bytes(root):
    out = {}
    for folder in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, folder))):
            with open(os.path.join(root, folder, name), "rb") as f:
                out[f"{folder}/{name}"] = f.read()
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demo_a"))
    return demo.generate_demo_dataset(root, seed=3, num_train_ids=5, num_test_ids=6)


def test_same_seed_same_bytes_other_seed_other_bytes(small, tmp_path):
    again = demo.generate_demo_dataset(str(tmp_path / "b"), seed=3, num_train_ids=5, num_test_ids=6)
    assert tree_bytes(small) == tree_bytes(again)
    other = demo.generate_demo_dataset(str(tmp_path / "c"), seed=4, num_train_ids=5, num_test_ids=6)
    assert tree_bytes(small) != tree_bytes(other)


def test_market_layout_names_and_protocol(small):
    assert sorted(os.listdir(small)) == ["bounding_box_test", "bounding_box_train", "query"]
    for folder in os.listdir(small):
        assert all(STRICT_MARKET_NAME.match(n) for n in os.listdir(os.path.join(small, folder)))
    ds = load_market1501(small, verbose=False)
    assert ds.num_train_pids == 5 and ds.num_cameras <= demo.NUM_CAMERAS
    test_ids = {r.pid for r in ds.query}
    assert len(test_ids) == 6 and not test_ids & set(ds.train_original_pids)
    gallery = collections.Counter(r.pid for r in ds.gallery)
    assert gallery[0] == 6 * 4 // 3 and gallery[-1] == 6  # distractors and junk
    for q in ds.query:  # every query has a true match in another camera
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)
    image = tf.io.decode_jpeg(tf.io.read_file(ds.query[0].path)).numpy()
    assert image.shape == (demo.IMAGE_HEIGHT, demo.IMAGE_WIDTH, 3) == (128, 64, 3)
    assert image.std() > 10  # a drawn scene, not a flat colour


def test_generate_refuses_a_used_folder_and_bad_sizes(small):
    with pytest.raises(ValueError, match="not empty"):
        demo.generate_demo_dataset(small, seed=3, num_train_ids=5, num_test_ids=6)
    with pytest.raises(ValueError, match="num_train_ids"):
        demo.generate_demo_dataset(small, num_train_ids=0)


def test_ensure_generates_once_atomically(tmp_path, monkeypatch):
    real = demo.generate_demo_dataset
    calls = []

    def killed(out_dir, **kwargs):  # a generation that dies half way
        real(out_dir, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "generate_demo_dataset", killed)
    with pytest.raises(KeyboardInterrupt):
        demo.ensure_demo_dataset(str(tmp_path), seed=1, num_train_ids=2, num_test_ids=2)
    assert os.listdir(tmp_path) == []  # nothing that looks complete, no temp left

    def counted(out_dir, **kwargs):
        calls.append(out_dir)
        return real(out_dir, **kwargs)

    monkeypatch.setattr(demo, "generate_demo_dataset", counted)
    root = demo.ensure_demo_dataset(str(tmp_path), seed=1, num_train_ids=2, num_test_ids=2)
    assert demo.ensure_demo_dataset(str(tmp_path), seed=1, num_train_ids=2, num_test_ids=2) == root
    assert len(calls) == 1 and os.listdir(tmp_path) == [os.path.basename(root)]
    assert load_market1501(root, verbose=False).num_train_pids == 2


def test_cues_vary_between_ids_and_cameras(small):
    """Different people differ more than one person's frames in one camera (cues are drawn)."""
    ds = load_market1501(small, verbose=False)
    by_key = collections.defaultdict(list)
    for r in ds.train:
        by_key[(r.pid, r.camid)].append(tf.io.decode_jpeg(tf.io.read_file(r.path)).numpy().astype(np.float32))
    same = [np.abs(v[0] - v[1]).mean() for v in by_key.values() if len(v) > 1]
    means = {k: np.mean(v, axis=0) for k, v in by_key.items()}
    keys = sorted(means)
    other = [np.abs(means[a] - means[b]).mean() for a in keys for b in keys if a[0] != b[0]]
    assert np.mean(same) < np.mean(other)


def test_command_line_writes_a_market_tree(tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "sal_tf.data.demo", f"--out={out}", "--num_train_ids=2", "--num_test_ids=2"]
    result = run_cmd(cmd, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "bounding_box_train" in os.listdir(out) and "train" in result.stdout
    assert load_market1501(str(out), verbose=False).num_train_pids == 2

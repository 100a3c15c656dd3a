"""CIFAR-100 extension (paper §4.5, Table 4): pickle parser, pipelines, model switches, smoke training."""

import json
import os
import pickle
import sys

import numpy as np
import pytest

from tests.conftest import QUICK_DEPTH, run_cmd


def _write_split(path, images, labels):
    """The official format, written by hand (not with the module under test)."""
    data = np.asarray(images, np.uint8).transpose(0, 3, 1, 2).reshape(len(images), 3072)
    with open(path, "wb") as f:
        pickle.dump(
            {
                b"filenames": [b"x.png"] * len(images),
                b"batch_label": b"training batch 1 of 1",
                b"fine_labels": [int(v) for v in labels],
                b"coarse_labels": [int(v) // 5 for v in labels],
                b"data": data,
            },
            f,
            protocol=2,
        )


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar") / "cifar-100-python"
    root.mkdir()
    rng = np.random.default_rng(0)
    _write_split(root / "train", rng.integers(0, 256, (48, 32, 32, 3)), np.arange(48) % 100)
    _write_split(root / "test", rng.integers(0, 256, (20, 32, 32, 3)), (np.arange(20) * 7) % 100)
    with open(root / "meta", "wb") as f:
        pickle.dump(
            {b"fine_label_names": [f"class{i}".encode() for i in range(100)], b"coarse_label_names": [b"c"] * 20},
            f,
            protocol=2,
        )
    return root


def test_parser_reads_planes_as_rgb(tmp_path):
    from sal_tf.data.cifar100 import read_cifar_pickle

    rng = np.random.default_rng(1)
    planes = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)  # [N, C, H, W] as stored
    with open(tmp_path / "train", "wb") as f:
        pickle.dump({b"data": planes.reshape(3, 3072), b"fine_labels": [5, 99, 0]}, f, protocol=2)
    images, labels = read_cifar_pickle(str(tmp_path / "train"))
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [5, 99, 0])
    for n in range(3):  # brute force: pixel (y, x) channel c = plane c, row y, column x
        for y, x in [(0, 0), (0, 31), (17, 3), (31, 31)]:
            assert list(images[n, y, x]) == [planes[n, c, y, x] for c in range(3)]


def test_load_from_data_dir_or_its_parent(cifar_root):
    from sal_tf.data.cifar100 import load_cifar100

    for d in (cifar_root, cifar_root.parent):
        data = load_cifar100(str(d), verbose=False)
        assert data.train_images.shape == (48, 32, 32, 3) and data.test_images.shape == (20, 32, 32, 3)
        np.testing.assert_array_equal(data.test_labels, (np.arange(20) * 7) % 100)
        assert data.class_names[3] == "class3" and data.num_classes == 100


def test_corrupt_and_malformed_files_give_clear_errors(tmp_path):
    from sal_tf.data.cifar100 import read_cifar_pickle

    bad = tmp_path / "train"
    with open(bad, "wb") as f:
        f.write(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1, 2]})[:40])
    with pytest.raises(ValueError, match="not a readable CIFAR-100 pickle") as err:
        read_cifar_pickle(str(bad))
    assert str(bad) in str(err.value)
    cases = [
        ({b"data": np.zeros((2, 3072), np.uint8)}, "fine_labels"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"fine_labels": [1, 2]}, "3072"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1]}, "fine_labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1, 100]}, "0..99"),
        ([1, 2, 3], "list"),
    ]
    for content, needle in cases:
        with open(bad, "wb") as f:
            pickle.dump(content, f)
        with pytest.raises(ValueError, match=needle):
            read_cifar_pickle(str(bad))


def test_missing_data_names_data_dir_and_keras_cache(tmp_path, monkeypatch):
    from sal_tf.data.cifar100 import find_cifar100

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(FileNotFoundError) as err:
        find_cifar100(None)
    msg = str(err.value)
    assert "--data_dir" in msg and str(tmp_path / "keras_home" / "datasets") in msg
    with pytest.raises(FileNotFoundError, match="--data_dir="):
        find_cifar100(str(tmp_path))


def test_keras_cache_is_used_without_download(cifar_root, tmp_path, monkeypatch):
    from sal_tf.data.cifar100 import find_cifar100

    cache = tmp_path / "kh" / "datasets" / "cifar-100-python-target"
    cache.mkdir(parents=True)
    os.symlink(cifar_root, cache / "cifar-100-python")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert find_cifar100(None) == str(cache / "cifar-100-python")


def test_train_pipeline_is_a_seeded_pad4_crop_flip(cifar_root):
    from sal_tf.data.cifar100 import load_cifar100
    from sal_tf.data.cifar100_pipelines import build_train_dataset

    data = load_cifar100(str(cifar_root), verbose=False)
    images, labels = data.train_images, data.train_labels

    def epoch(e):
        return [(x.numpy(), y.numpy()) for x, y in build_train_dataset(images, labels, batch_size=16, seed=5, epoch=e)]

    a, b, c = epoch(0), epoch(0), epoch(1)
    assert len(a) == 3 and a[0][0].shape == (16, 32, 32, 3) and a[0][0].dtype == np.float32
    for (xa, ya), (xb, yb) in zip(a, b):  # same (seed, epoch) → same batches (resume relies on it)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not all(np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(a, c))
    # Every output is a (possibly mirrored) ≤4-pixel shift of its source image with zero fill.
    seen = sorted(np.concatenate([y for _, y in a]).tolist())
    assert seen == sorted(labels.tolist())  # labels are 0..47: one image per label
    for x, y in a:
        for img, label in zip(x, y):
            src = images[label].astype(np.float32)
            padded = np.pad(src, ((4, 4), (4, 4), (0, 0)))
            matches = [
                (dy, dx, fl)
                for dy in range(9)
                for dx in range(9)
                for fl in (False, True)
                if np.array_equal(
                    img, (padded[dy : dy + 32, dx : dx + 32][:, ::-1] if fl else padded[dy : dy + 32, dx : dx + 32])
                )
            ]
            assert matches, "output is not a pad-4 crop (+ mirror) of its image"


@pytest.mark.parametrize("dilation, sac", [(False, False), (True, True)])
def test_table4_switches_build_the_intended_model(dilation, sac, tmp_path, cifar_root):
    from sal_tf.data.cifar100 import load_cifar100
    from sal_tf.training.config import CifarTrainConfig
    from sal_tf.training.tasks import CifarTask

    cfg = CifarTrainConfig(
        model_dir=str(tmp_path / "m"), dilation=dilation, multi_level=dilation, stage6=dilation, sac=sac,
        width_divisor=8, verbose=0,
    )  # fmt: skip
    task = CifarTask(cfg, load_cifar100(str(cifar_root), verbose=False))
    model = task.build_model(pretrained=False)
    assert model.stem == "cifar" and model.get_layer("conv1_conv").kernel.shape[:2] == (3, 3)
    assert model.get_layer("conv1_conv").strides == (1, 1)
    assert not any("pool1" in layer.name for layer in model.layers)  # no max-pool
    assert model.get_layer("classifier").units == 100
    assert model.get_layer("conv4_block2_2_conv").dilation_rate == ((2, 2) if dilation else (1, 1))
    assert model.get_layer("conv5_block2_2_conv").dilation_rate == ((4, 4) if dilation else (1, 1))
    # 32×32 input, stride-1 stem: conv3 is 16×16; DIL keeps stage4-6 there, plain ResNet goes to 4×4.
    side = 16 if dilation else 4
    assert model.attention_map_size == (side, side)
    assert tuple(model.get_layer("conv4_block6_out").output.shape[1:3]) == ((16, 16) if dilation else (8, 8))
    assert ("multi_level" in [layer.name for layer in model.layers]) == dilation
    assert any(layer.name.startswith("conv6_") for layer in model.layers) == dilation  # Soft = plain ResNet50
    (stage,) = cfg.stages()
    assert stage.losses["softmax"] and stage.losses["metric"] is None and stage.losses["sac"] == sac
    assert cfg.table4_row[1] == ("ResNet50 (Soft + DIL + SAC)" if dilation else "ResNet50 (Soft)")


def test_table4_resnet101_row_is_a_plain_resnet101():
    from sal_tf.training.config import CifarTrainConfig

    cfg = CifarTrainConfig(depth=101, dilation=False, multi_level=False, stage6=False, sac=False)
    assert cfg.table4_row == ("resnet101_soft", "ResNet101 (Soft)")
    assert cfg.model_options()["depth"] == 101


def test_config_rejects_a_metric_loss():
    from sal_tf.training.config import CifarTrainConfig

    with pytest.raises(ValueError, match="loss=softmax"):
        CifarTrainConfig(loss="softmax+quadruplet")


@pytest.mark.slow
def test_smoke_train_writes_error_percent_and_resumes(tmp_path, cifar_root):
    from sal_tf.data.cifar100 import load_cifar100
    from sal_tf.training.commands import train_cifar
    from sal_tf.training.config import CifarTrainConfig, StageConfig
    from sal_tf.training.experiment import ConfigMismatch, Experiment
    from sal_tf.training.tasks import CifarTask

    data = load_cifar100(str(cifar_root), verbose=False)
    cfg = CifarTrainConfig(
        model_dir=str(tmp_path / "run"),
        width_divisor=8,
        depth=QUICK_DEPTH,
        verbose=0,
        eval_batch_size=8,
        stage1=StageConfig(epochs=1, learning_rate=0.01, batch_size=16),
        max_steps_per_epoch=2,
        max_eval_images=12,
    )
    results = train_cifar(cfg, data=data)
    with open(tmp_path / "run" / "results.json") as f:
        stored = json.load(f)
    assert stored["stage1"] == results["stage1"]
    res = stored["stage1"]
    assert res["num_images"] == 12
    # brute-force check of the reported error with the saved model
    import keras

    model = keras.saving.load_model(str(tmp_path / "run" / "stage1.keras"), compile=False)
    logits = model(data.test_images[:12].astype(np.float32), training=False)["logits"].numpy()
    wrong = np.sum(np.argmax(logits, 1) != data.test_labels[:12])
    assert res["error"] == pytest.approx(100.0 * wrong / 12)
    # ResNet14 is no Table 4 row: named, with no paper figure (the rows' figures: test_table4_rows_...)
    assert stored["table4"]["row"] == "ResNet14 (Soft + DIL + SAC)"
    assert stored["table4"]["paper_test_error_percent"] is None
    assert stored["table4"]["test_error_percent"] == res["error"]
    assert os.listdir(tmp_path / "run" / "tensorboard" / "eval")
    # A finished stage is skipped on rerun; another model setting in the same folder is refused.
    again = Experiment(cfg, CifarTask(cfg, data)).run()
    assert again["stage1"] == res

    with pytest.raises(ConfigMismatch, match="width_divisor"):
        other = CifarTrainConfig(**{**cfg.to_dict(), "width_divisor": 4})
        Experiment(other, CifarTask(other, data))


def test_cli_help_lists_flags_and_missing_data_is_exit_2(tmp_path):
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_HOME": str(tmp_path / "kh")}
    out = run_cmd([sys.executable, "-m", "trainers.cifar100", "--help"], env=env, timeout=120)
    for flag in (
        "--epochs",
        "--lr",
        "--batch_size",
        "--[no]dilation",
        "--[no]sac",
        "--max_steps_per_epoch",
        "--data_dir",
        "--width_divisor",
    ):
        assert flag in out.stdout, flag
    out = run_cmd([sys.executable, "-m", "trainers.cifar100", f"--model_dir={tmp_path / 'm'}"], env=env, timeout=120)
    assert out.returncode == 2 and "--data_dir" in out.stderr and "keras" in out.stderr


def test_table4_rows_carry_the_papers_error():
    """`table4_summary` puts the paper's Table 4 figure beside ours for each of its rows."""
    from sal_tf.training.config import CifarTrainConfig
    from sal_tf.training.tasks.cifar import table4_summary

    results = {"stage1": {"error": 30.5, "num_images": 10000}}
    plain = dict(dilation=False, multi_level=False, stage6=False)
    for config, row, paper in [
        (CifarTrainConfig(), "ResNet50 (Soft + DIL + SAC)", 21.75),
        (CifarTrainConfig(sac=False, **plain), "ResNet50 (Soft)", 22.02),
    ]:
        summary = table4_summary(config, results)
        assert (summary["row"], summary["paper_test_error_percent"]) == (row, paper)
        assert (summary["test_error_percent"], summary["num_test_images"]) == (30.5, 10000)

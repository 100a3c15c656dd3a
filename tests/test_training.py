"""Trainer (`sal_tf/training/experiment.py`): stages, results, TensorBoard, model_dir safety, --help.

All runs use the tiny preset on a small demo dataset with a few steps per epoch. Strategies are in
tests/test_training_distribute.py, resume after SIGKILL in tests/test_training_checkpointing.py,
the NaN stop in tests/test_training_loop.py.
"""

import glob
import json
import os
import sys

import numpy as np
import pytest

from tests.conftest import make_config, run_cmd


def experiment_of(config, data, strategy=None):
    from sal_tf.training.experiment import Experiment
    from sal_tf.training.tasks import ReIDTask

    return Experiment(config, ReIDTask(config, data), strategy=strategy)


def test_stage2_alone_without_stage1_is_a_clear_error(tmp_path, data):
    with pytest.raises(FileNotFoundError) as err:
        experiment_of(make_config(tmp_path / "run", stage="2"), data).run()
    msg = str(err.value)
    assert "stage1.keras" in msg and "--stage=1" in msg


def test_stage2_starts_from_stage1_weights_and_results_written(trained_run):
    run_dir, stage1, start2 = trained_run["run_dir"], trained_run["stage1_weights"], trained_run["stage2_start_weights"]
    results = trained_run["results"]
    assert len(stage1) == len(start2)
    for a, b in zip(stage1, start2):
        np.testing.assert_array_equal(a, b)
    assert os.path.exists(run_dir / "stage2.keras")
    stored = json.loads((run_dir / "results.json").read_text())
    for key in ("untrained", "stage1", "stage2"):
        assert 0.0 <= stored[key]["mAP"] <= 1.0 and stored[key]["num_valid_queries"] > 0
    assert results["stage2"]["mAP"] == stored["stage2"]["mAP"]


def test_model_dir_with_other_config_is_refused(tmp_path, data):
    from sal_tf.training.experiment import ConfigMismatch

    experiment_of(make_config(tmp_path / "run"), data)
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(ConfigMismatch) as err:
        experiment_of(make_config(tmp_path / "run", loss="softmax+triplet", sac=False), data)
    lines = [line.strip() for line in str(err.value).splitlines() if line.startswith("  ")]
    assert lines == ["loss: stored 'softmax+quadruplet', now 'softmax+triplet'", "sac: stored True, now False"]
    assert (tmp_path / "run" / "config.json").read_text() == before
    experiment_of(make_config(tmp_path / "run", strategy="default", eval_every=3), data)  # runtime knobs may change


def test_tensorboard_has_scalars_and_images(trained_run):
    import tensorflow as tf

    run_dir = trained_run["run_dir"]
    tags = set()
    for path in glob.glob(str(run_dir / "tensorboard" / "*" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                tags.add(v.tag)
    for tag in (
        "train/loss",
        "train/softmax",
        "train/sac",
        "train/quadruplet",
        "train/accuracy",
        "train/learning_rate",
        "train/images_per_second",
        "train/quadruplet_active_1",
        "stage1/mAP",
        "stage2/rank1",
        "stage2_rerank/mAP",
        "untrained/mAP",
        "attention/stage4_stage5_stage6",
        "stage2/rank_lists",
    ):
        assert tag in tags, (tag, sorted(tags))


def test_help_lists_every_training_flag_with_defaults():
    out = run_cmd([sys.executable, "-m", "trainers.market", "--help"])
    assert out.returncode == 1, out.stderr[-2000:]  # absl's --help exits with status 1
    text = out.stdout
    for name in (
        "data_dir",
        "stage",
        "strategy",
        "loss",
        "dilation",
        "multi_level",
        "sac",
        "backbone_weights",
        "stage1_epochs",
        "stage2_lr",
        "num_ids",
        "mixed_precision",
        "jit_compile",
        "deterministic",
        "checkpoint_every_steps",
        "eval_every",
    ):
        assert f"--{name}" in text or f"--[no]{name}" in text, name
    assert "--stage: <1|2|all>: Training stage(s) to run.\n    (default: 'all')" in text

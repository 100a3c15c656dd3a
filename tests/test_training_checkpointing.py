"""A stage's checkpoints (`sal_tf/training/checkpointing.py`): save, restore, resume position, the last N kept."""

import os
import signal
import subprocess
import time

import keras
import numpy as np
import pytest

from sal_tf.training.checkpointing import StageCheckpoint
from tests.conftest import REPO, run_cmd, trainer_cmd


def small_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def train_one_step(model, optimizer):
    grads = [keras.ops.ones_like(v) for v in model.trainable_variables]
    optimizer.apply_gradients(zip(grads, model.trainable_variables))


def test_restore_brings_back_weights_optimizer_and_position(tmp_path):
    model, optimizer = small_model(0)
    saved = StageCheckpoint(str(tmp_path), model, optimizer)
    assert saved.restore() is None and saved.latest is None  # nothing yet
    for _ in range(3):
        train_one_step(model, optimizer)
    saved.epoch.assign(2)
    saved.step_in_epoch.assign(5)
    path = saved.save(17)
    assert os.path.basename(path) == "ckpt-17" and saved.latest == path

    other, other_optimizer = small_model(1)  # different initial weights
    restored = StageCheckpoint(str(tmp_path), other, other_optimizer)
    assert restored.restore() == path
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(other_optimizer.iterations.numpy()) == 3
    assert (int(restored.epoch.numpy()), int(restored.step_in_epoch.numpy())) == (2, 5)
    # the momentum slots come back too: one more identical step keeps both models equal
    train_one_step(model, optimizer)
    train_one_step(other, other_optimizer)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)


@pytest.mark.parametrize("keep", [1, 2])
def test_only_the_last_n_checkpoints_are_kept(tmp_path, keep):
    model, optimizer = small_model(0)
    checkpoint = StageCheckpoint(str(tmp_path), model, optimizer, max_to_keep=keep)
    for step in (5, 10, 15):
        checkpoint.save(step)
    kept = [os.path.basename(p) for p in checkpoint.manager.checkpoints]
    assert kept == [f"ckpt-{s}" for s in (5, 10, 15)[-keep:]]
    assert not any(name.startswith("ckpt-5.") for name in os.listdir(tmp_path))
    assert os.path.basename(checkpoint.latest) == "ckpt-15"


def test_a_non_chief_worker_writes_nothing_into_the_model_dir(tmp_path):
    model, optimizer = small_model(0)
    worker = StageCheckpoint(str(tmp_path), model, optimizer, chief=False, worker=1)
    worker.save(3)
    assert os.listdir(tmp_path) == []  # its scratch folder is deleted after the save


def _final_weights(path):
    return keras.saving.load_model(str(path), compile=False).get_weights()


@pytest.mark.slow
def test_sigkill_resume_matches_uninterrupted_run(tmp_path, data_root):
    extra = ("--stage=1", "--deterministic", "--checkpoint_every_steps=2", "--noeval_untrained")
    ref = run_cmd(trainer_cmd(data_root, tmp_path / "ref", *extra))
    assert ref.returncode == 0, ref.stderr[-3000:]

    cmd = trainer_cmd(data_root, tmp_path / "killed", *extra)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "stage1" / "checkpoint"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert state.exists(), "no checkpoint was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "stage1.keras").exists(), "killed too late to test a resume"
    resumed = run_cmd(cmd + ["--verbose=1"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming stage1" in resumed.stdout
    for a, b in zip(
        _final_weights(tmp_path / "ref" / "stage1.keras"), _final_weights(tmp_path / "killed" / "stage1.keras")
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

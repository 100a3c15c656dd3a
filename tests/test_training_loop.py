"""The generic stage loop (`sal_tf/training/loop.py`) on a two-weight model: step counting, epoch-end
and periodic checkpoints, resuming mid-epoch as if never stopped, and the NaN stop."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from sal_tf.training.loop import LoopOptions, StageLoop, TrainingDiverged
from tests.conftest import run_cmd, trainer_cmd

STEPS, BATCH = 5, 4


def batches(nan_at_step=None):
    """`epoch_dataset(epoch)`: STEPS batches of y = 2x + 1 (x of batch `nan_at_step` NaN), different per epoch."""

    def epoch_dataset(epoch):
        x = np.random.default_rng(epoch).normal(size=(STEPS * BATCH, 1)).astype(np.float32)
        y = 2 * x[:, 0] + 1
        if nan_at_step is not None:
            x[nan_at_step * BATCH : (nan_at_step + 1) * BATCH] = np.nan
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)

    return epoch_dataset


def squared_error(labels, outputs):
    return {"loss": tf.reduce_mean(tf.square(outputs[:, 0] - labels))}


def make_loop(directory, every=0, learning_rate=0.05):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    optimizer.build(model.trainable_variables)
    options = LoopOptions(checkpoint_every_steps=every, verbose=0)
    strategy = tf.distribute.get_strategy()
    return StageLoop(strategy, model, squared_error, optimizer, str(directory), None, options, "stage1")


def checkpoint_steps(directory):
    return sorted(int(name[len("ckpt-") : -len(".index")]) for name in os.listdir(directory) if name.endswith(".index"))


def test_steps_are_counted_and_each_epoch_ends_with_a_checkpoint(tmp_path):
    loop = make_loop(tmp_path)
    ends = []
    last = loop.run(2, STEPS, batches(), BATCH, on_epoch_end=lambda epoch, step: ends.append((epoch, step)))
    assert last == 2 * STEPS and int(loop.optimizer.iterations.numpy()) == 2 * STEPS
    assert ends == [(1, STEPS), (2, 2 * STEPS)] and loop.position == (2, 0)
    assert checkpoint_steps(tmp_path) == [STEPS, 2 * STEPS]
    again = make_loop(tmp_path)  # a finished epoch is not trained again
    assert again.restored and again.position == (2, 0)
    assert again.run(2, STEPS, batches(), BATCH) == 2 * STEPS


def test_periodic_checkpoints_inside_an_epoch_and_the_last_three_kept(tmp_path):
    loop = make_loop(tmp_path, every=2)
    loop.run(2, STEPS, batches(), BATCH)
    # every 2 steps inside an epoch (2, 4, 6, 8), and at each epoch end (5, 10); the manager keeps 3
    assert checkpoint_steps(tmp_path) == [6, 8, 10]


def test_nan_stops_at_that_step_keeping_the_last_good_checkpoint(tmp_path):
    loop = make_loop(tmp_path, every=2)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 4") as err:
        loop.run(1, STEPS, batches(nan_at_step=3), BATCH)
    assert err.value.exit_status == 3 and "ckpt-2" in str(err.value)
    assert checkpoint_steps(tmp_path) == [2]
    resumed = make_loop(tmp_path)
    assert resumed.position == (0, 2)
    assert all(np.isfinite(w).all() for w in resumed.model.get_weights())


def test_weights_that_overflow_under_a_finite_loss_are_never_checkpointed(tmp_path):
    """At lr 1e39 (inf in float32) the first update overflows while its step's loss (taken before it) is finite."""
    loop = make_loop(tmp_path, every=1, learning_rate=1e39)
    with pytest.raises(TrainingDiverged, match=r"became non-finite at epoch 1, step 1 .*loss was still finite") as err:
        loop.run(1, STEPS, batches(), BATCH)
    assert err.value.exit_status == 3
    assert checkpoint_steps(tmp_path) == []  # the overflowed state was not written


def test_resuming_mid_epoch_gives_the_uninterrupted_weights(tmp_path):
    stopped = make_loop(tmp_path / "stopped", every=2)
    with pytest.raises(TrainingDiverged):
        stopped.run(2, STEPS, batches(nan_at_step=3), BATCH)  # diverges in epoch 1, after ckpt-2
    resumed = make_loop(tmp_path / "stopped")
    assert resumed.run(2, STEPS, batches(), BATCH) == 2 * STEPS  # steps 3.. of epoch 1, then epoch 2
    straight = make_loop(tmp_path / "straight")
    straight.run(2, STEPS, batches(), BATCH)
    for a, b in zip(resumed.model.get_weights(), straight.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.slow
def test_nan_loss_stops_with_checkpoint_intact(tmp_path, data_root):
    out = run_cmd(
        trainer_cmd(
            data_root,
            tmp_path / "nan",
            "--stage=1",
            "--stage1_lr=1e12",
            "--checkpoint_every_steps=1",
            "--stage1_epochs=3",
            "--noeval_untrained",
        )
    )
    assert out.returncode == 3, (out.returncode, out.stderr[-2000:])
    # the loss, or (before it) a weight, became non-finite; either way nothing non-finite is kept
    assert "loss became" in out.stderr or ("became non-finite" in out.stderr and "loss was still finite" in out.stderr)
    assert "last good checkpoint" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "nan" / "stage1.keras").exists()

    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(tmp_path / "nan" / "stage1"))
    if state is not None:  # a checkpoint from before the divergence must be readable and finite
        reader = tf.train.load_checkpoint(state.model_checkpoint_path)
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                assert np.isfinite(value).all(), name

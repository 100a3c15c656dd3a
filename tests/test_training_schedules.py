"""The learning-rate schedule (`sal_tf/training/schedules.py`): step decay (paper §4.1) and linear warm-up."""

import dataclasses

import keras
import numpy as np
import pytest

from sal_tf.training.config import StageConfig
from sal_tf.training.optimizer import build_optimizer, current_learning_rate
from sal_tf.training.schedules import WarmupStepDecay


def rates(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_step_decay_changes_exactly_at_each_boundary():
    schedule = WarmupStepDecay(0.1, decay_steps=10, decay_rate=0.1)
    np.testing.assert_allclose(rates(schedule, [0, 9, 10, 19, 20, 29, 30]), [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4])


def test_warm_up_ramps_linearly_to_the_base_rate_then_decays():
    schedule = WarmupStepDecay(0.2, decay_steps=8, decay_rate=0.5, warmup_steps=4)
    # (step + 1) / 4 of the base during the warm-up; the decay counts from step 0.
    np.testing.assert_allclose(rates(schedule, [0, 1, 2, 3, 4, 7, 8]), [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.1])


def test_decay_steps_of_zero_mean_every_step_not_a_division_by_zero():
    schedule = WarmupStepDecay(1.0, decay_steps=0, decay_rate=0.5)
    assert schedule.decay_steps == 1
    np.testing.assert_allclose(rates(schedule, [0, 1, 2]), [1.0, 0.5, 0.25])


def test_config_round_trip_gives_the_same_rates():
    schedule = WarmupStepDecay(0.05, decay_steps=18, decay_rate=0.1, warmup_steps=3)
    again = WarmupStepDecay.from_config(schedule.get_config())
    steps = [0, 1, 2, 3, 17, 18, 40]
    np.testing.assert_allclose(rates(again, steps), rates(schedule, steps))


@pytest.mark.parametrize("mode", ["coupled", "decoupled"])
def test_a_stage_schedule_counts_in_epochs_of_its_steps(mode):
    """decay_every_epochs and warmup_epochs are converted with the stage's steps per epoch."""
    stage = StageConfig(learning_rate=0.1, decay_every_epochs=2, warmup_epochs=1, weight_decay_mode=mode)
    optimizer = build_optimizer(stage, steps_per_epoch=5)
    variable = keras.Variable(np.zeros(2, np.float32))
    seen = []
    for _ in range(12):
        seen.append(current_learning_rate(optimizer))
        optimizer.apply_gradients([(keras.ops.zeros(2), variable)])
    # warm-up over 5 steps (1 epoch), ×0.1 after 10 steps (2 epochs)
    np.testing.assert_allclose(seen, [0.02, 0.04, 0.06, 0.08, 0.1] + [0.1] * 5 + [0.01] * 2, rtol=1e-5)


def test_mixed_precision_wraps_the_optimizer_and_keeps_its_schedule():
    stage = dataclasses.replace(StageConfig(), learning_rate=0.3, decay_every_epochs=1)
    optimizer = build_optimizer(stage, steps_per_epoch=4, mixed_precision=True)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert current_learning_rate(optimizer) == pytest.approx(0.3)

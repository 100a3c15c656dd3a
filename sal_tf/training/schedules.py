"""Learning-rate schedule of the paper (step decay) with an optional linear warm-up.

The strong baseline's schedule (BoT, Luo et al. 2019) is the same class with multi-step milestones
(×0.1 at epochs 40 and 70) and a warm-up that starts from a fraction of the base rate (0.1:
3.5e-5 → 3.5e-4 over 10 epochs).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sal_tf")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = base · rate^k, ramped linearly over `warmup_steps`.

    k = ⌊step / decay_steps⌋, or, with `milestones`, the number of milestones ≤ step. The warm-up
    multiplies by (step + 1) / warmup_steps (`warmup_start=0`) or by
    warmup_start + (1 − warmup_start) · step / warmup_steps (BoT's linear ramp from a fraction),
    until it reaches 1. Paper §4.1: base 0.1 (stage 1) or 1e-4 (stage 2), ×0.1 every 50 epochs, no
    warm-up.
    """

    def __init__(self, base_lr, decay_steps, decay_rate=0.1, warmup_steps=0, warmup_start=0.0, milestones=()):
        self.base_lr = float(base_lr)
        self.decay_steps = max(1, int(decay_steps))
        self.decay_rate = float(decay_rate)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = float(warmup_start)
        self.milestones = [int(m) for m in milestones]
        if not 0 <= self.warmup_start <= 1 or any(m < 0 for m in self.milestones):
            raise ValueError(
                f"WarmupStepDecay: warmup_start must be in [0, 1] and milestones >= 0. "
                f"Received: warmup_start={warmup_start}, milestones={milestones}"
            )

    def _decays(self, step):
        if not self.milestones:
            return ops.floor(step / self.decay_steps)
        reached = [ops.cast(step >= m, "float32") for m in self.milestones]
        return ops.sum(ops.stack(reached))

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = self.base_lr * ops.power(self.decay_rate, self._decays(step))
        if self.warmup_steps > 0 and self.warmup_start > 0:
            ramp = self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_steps
            lr = lr * ops.minimum(1.0, ramp)
        elif self.warmup_steps > 0:
            lr = lr * ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "warmup_steps": self.warmup_steps,
            "warmup_start": self.warmup_start,
            "milestones": list(self.milestones),
        }

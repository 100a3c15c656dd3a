"""Learning-rate schedule of the paper (step decay) with an optional linear warm-up."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sal_tf")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = base · rate^⌊step / decay_steps⌋, ramped linearly over `warmup_steps`.

    Paper §4.1: base 0.1 (stage 1) or 1e-4 (stage 2), ×0.1 every 50 epochs, no warm-up.
    """

    def __init__(self, base_lr, decay_steps, decay_rate=0.1, warmup_steps=0):
        self.base_lr = float(base_lr)
        self.decay_steps = max(1, int(decay_steps))
        self.decay_rate = float(decay_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = self.base_lr * ops.power(self.decay_rate, ops.floor(step / self.decay_steps))
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "warmup_steps": self.warmup_steps,
        }

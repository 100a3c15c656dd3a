"""The stages' optimiser: SGD with momentum and the weight decay re-ID papers mean.

`weight_decay_mode="coupled"` (default) is PyTorch's / Caffe's L2 form, the one torchreid, BoT and
the usual CIFAR recipe use with 5e-4, applied to **every** trainable variable (convolutions, dense
layers, BatchNorm γ/β and biases, as torchreid's default optimiser does):

    g ← ∇L(w) + wd · w
    v ← μ · v + g            (v starts at 0, so the first step is v = g, as in PyTorch)
    w ← w − lr · v

`"decoupled"` is Keras' `SGD(weight_decay=wd)`: `w ← w − lr · wd · w` outside the momentum
(`v ← μ · v − lr · ∇L;  w ← w + v`); with μ = 0.9 it decays weights about 10× less.

`optimizer="adam"` is the strong baseline's (BoT, Luo et al. 2019: Adam, lr 3.5e-4, wd 5e-4): coupled,
it is PyTorch's `torch.optim.Adam(weight_decay=wd)` (g ← ∇L + wd·w, then Adam with ε = 1e-8);
decoupled, Keras' `Adam(weight_decay=wd)` (AdamW's form).
"""

import keras
from keras import ops

from sal_tf.training.schedules import WarmupStepDecay


@keras.saving.register_keras_serializable(package="sal_tf")
class CoupledSGD(keras.optimizers.Optimizer):
    """SGD with momentum and coupled L2 weight decay (PyTorch `torch.optim.SGD` semantics).

    Args:
        learning_rate: float or `LearningRateSchedule`.
        momentum: μ in [0, 1).
        l2: the weight-decay coefficient wd added to the gradient as `wd · w`.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, l2=5e-4, name="coupled_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= momentum < 1 or l2 < 0:
            raise ValueError(f"CoupledSGD: momentum must be in [0, 1) and l2 >= 0. Received: {momentum}, {l2}")
        self.momentum = float(momentum)
        self.l2 = float(l2)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, ops.add(ops.multiply(m, ops.cast(self.momentum, variable.dtype)), gradient))
        self.assign_sub(variable, ops.multiply(m, learning_rate))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "l2": self.l2}


@keras.saving.register_keras_serializable(package="sal_tf")
class CoupledAdam(keras.optimizers.Adam):
    """Adam with coupled L2 weight decay (PyTorch `torch.optim.Adam(weight_decay=l2)` semantics).

    Args:
        learning_rate: float or `LearningRateSchedule`.
        l2: wd, added to the gradient as `wd · w` before the moment estimates.
        epsilon: PyTorch's default 1e-8 (Keras': 1e-7).
    """

    def __init__(self, learning_rate=3.5e-4, l2=5e-4, epsilon=1e-8, name="coupled_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, name=name, **kwargs)
        if l2 < 0:
            raise ValueError(f"CoupledAdam: l2 must be >= 0. Received: {l2}")
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = ops.add(
                ops.cast(gradient, variable.dtype), ops.multiply(ops.cast(self.l2, variable.dtype), variable)
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def build_schedule(stage_config, steps_per_epoch):
    """The stage's `WarmupStepDecay`: every N epochs (paper §4.1) or at the milestone epochs (BoT)."""
    s = stage_config
    return WarmupStepDecay(
        s.learning_rate,
        decay_steps=s.decay_every_epochs * steps_per_epoch,
        decay_rate=s.decay_rate,
        warmup_steps=s.warmup_epochs * steps_per_epoch,
        warmup_start=s.warmup_start,
        milestones=[m * steps_per_epoch for m in s.decay_milestones],
    )


def build_optimizer(stage_config, steps_per_epoch, mixed_precision=False):
    """The optimiser of a stage (`StageConfig`): SGD (paper §4.1) or Adam (BoT) + `build_schedule`."""
    s = stage_config
    schedule = build_schedule(s, steps_per_epoch)
    if s.optimizer == "adam":
        optimizer = (
            CoupledAdam(learning_rate=schedule, l2=s.weight_decay)
            if s.weight_decay_mode == "coupled"
            else keras.optimizers.Adam(learning_rate=schedule, epsilon=1e-8, weight_decay=s.weight_decay or None)
        )
    elif s.weight_decay_mode == "coupled":
        optimizer = CoupledSGD(learning_rate=schedule, momentum=s.momentum, l2=s.weight_decay)
    else:
        optimizer = keras.optimizers.SGD(
            learning_rate=schedule, momentum=s.momentum, weight_decay=s.weight_decay or None
        )
    return keras.optimizers.LossScaleOptimizer(optimizer) if mixed_precision else optimizer


def current_learning_rate(optimizer):
    """The learning rate the next step uses (float)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)

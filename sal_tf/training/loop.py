"""The generic training loop of one stage; it knows no dataset, model or evaluation.

One custom loop (`strategy.run` inside one `tf.function` step + a Keras optimizer) serves the
default, mirrored and multi-worker strategies (Keras 3 `fit` breaks under
MultiWorkerMirroredStrategy, keras-team/keras#20585). Each replica's loss is divided by the number
of replicas, so the global batch is the configured one. Per step: NaN/Inf stop
(`TrainingDiverged`, the last good checkpoint kept), progress, TensorBoard scalars and periodic
checkpoints; per epoch: a checkpoint and the caller's `on_epoch_end`.

A `SideUpdate` trains variables outside the model with their own optimiser in the same step: the
center loss's centres (Wen et al. 2016), as BoT (Luo et al. 2019) updates them — SGD on the
gradient of the weighted loss divided by the loss weight (`sal_tf/losses/center.py`).
"""

import dataclasses
import math
import time

import keras
import tensorflow as tf

from sal_tf.training import distribute
from sal_tf.training.checkpointing import StageCheckpoint
from sal_tf.training.config import TrainConfig
from sal_tf.training.optimizer import current_learning_rate
from sal_tf.utils.progress import Progress

_MINING_SUFFIXES = ("_active_1", "_active_2", "_active")  # logged to TensorBoard, not the progress line


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf (exit status 3)."""

    exit_status = 3


@dataclasses.dataclass
class LoopOptions:
    """How the loop runs: the `TrainConfig` fields of the same names (and their defaults)."""

    checkpoint_every_steps: int = TrainConfig.checkpoint_every_steps
    log_every_steps: int = TrainConfig.log_every_steps
    jit_compile: bool = TrainConfig.jit_compile
    mixed_precision: bool = TrainConfig.mixed_precision
    verbose: int = TrainConfig.verbose

    @classmethod
    def of(cls, config):
        """The options of a `TrainConfig`."""
        return cls(**{field.name: getattr(config, field.name) for field in dataclasses.fields(cls)})


@dataclasses.dataclass
class SideUpdate:
    """Variables outside the model, updated in the train step by their own optimiser.

    Attributes:
        variables: the variables (e.g. `CenterLoss.centers`).
        optimizer: their Keras optimiser (built on them).
        gradient_scale: multiplies their gradient of the (unscaled) loss (BoT: 1 / center-loss weight).
    """

    variables: list
    optimizer: object
    gradient_scale: float = 1.0


def center_side_update(objective, learning_rate):
    """The `SideUpdate` of an objective's center-loss centres (plain SGD, BoT), or None without them."""
    if getattr(objective, "centers", None) is None:
        return None
    variables = [objective.centers.centers]
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, name="center_sgd")
    optimizer.build(variables)
    return SideUpdate(variables, optimizer, 1.0 / objective.center_weight)


def make_train_step(strategy, model, objective, optimizer, options, side=None):
    """`step(iterator) -> {term: replica-mean scalar}`: one optimiser step on the next global batch."""
    num_replicas = strategy.num_replicas_in_sync

    def replica_step(images, labels):
        with tf.GradientTape(persistent=side is not None) as tape:
            terms = objective(labels, model(images, training=True))
            loss = terms["loss"] / num_replicas
            scaled = optimizer.scale_loss(loss) if options.mixed_precision else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        # Variables no active loss term reaches (e.g. the classifier of a metric-only ablation
        # setting) get None: leave them out of the update.
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
        if side is not None:
            side_grads = tape.gradient(loss, side.variables)
            scaled_side = [tf.convert_to_tensor(g) * side.gradient_scale for g in side_grads]  # dense (take → slices)
            side.optimizer.apply_gradients(zip(scaled_side, side.variables))
        return terms

    if options.jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def train_step(iterator):
        images, labels = next(iterator)
        per_replica = strategy.run(replica_step, args=(images, labels))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    return train_step


class StageLoop:
    """Trains one stage for its epochs, resuming from the stage's latest checkpoint.

    Args:
        strategy: the `tf.distribute.Strategy` the model and optimizer were built under.
        model, objective, optimizer: `objective(labels, outputs)` returns a dict with "loss".
        checkpoint_dir: the stage's checkpoint folder.
        writer: a `tf.summary` writer or None (non-chief workers).
        options: `LoopOptions`.
        name: the stage's name, for messages ("stage1").
        side: a `SideUpdate` or None; its variables and optimiser are checkpointed with the model.
    """

    def __init__(self, strategy, model, objective, optimizer, checkpoint_dir, writer, options, name, side=None):
        self.strategy, self.model, self.optimizer = strategy, model, optimizer
        self.writer, self.options, self.name = writer, options, name
        self.chief = distribute.is_chief(strategy)
        extra = {} if side is None else {"side_variables": side.variables, "side_optimizer": side.optimizer}
        self.checkpoint = StageCheckpoint(
            checkpoint_dir, model, optimizer, chief=self.chief, worker=distribute.worker_id(strategy), extra=extra
        )
        self.restored = self.checkpoint.restore()
        self.train_step = make_train_step(strategy, model, objective, optimizer, options, side)

    @property
    def position(self):
        """(epoch, step within the epoch) the next step trains."""
        return int(self.checkpoint.epoch.numpy()), int(self.checkpoint.step_in_epoch.numpy())

    def run(self, epochs, steps_per_epoch, epoch_dataset, batch_size, on_epoch_end=None):
        """Trains epochs [current, epochs). `epoch_dataset(epoch)` gives the epoch's global batches."""
        global_step = int(self.optimizer.iterations.numpy())
        start_epoch, start_step = self.position
        for epoch in range(start_epoch, epochs):
            first = start_step if epoch == start_epoch else 0
            if first < steps_per_epoch:
                ds = epoch_dataset(epoch).take(steps_per_epoch).skip(first)
                iterator = iter(distribute.distribute_global_batches(self.strategy, lambda ds=ds: ds))
                title = f"{self.name.capitalize()} epoch {epoch + 1}/{epochs}"
                progress = Progress(steps_per_epoch, title, verbose=self.options.verbose and self.chief, start=first)
                for step in range(first, steps_per_epoch):
                    global_step += 1
                    self._train_one(iterator, epoch, step, global_step, batch_size, progress, steps_per_epoch)
                progress.finish()
            self.checkpoint.epoch.assign(epoch + 1)
            self.checkpoint.step_in_epoch.assign(0)
            self._save_if_finite(global_step, epoch, steps_per_epoch - 1)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, global_step)
        return global_step

    def _train_one(self, iterator, epoch, step, global_step, batch_size, progress, steps_per_epoch):
        t0 = time.perf_counter()
        terms = {k: float(v) for k, v in self.train_step(iterator).items()}
        images_per_second = batch_size / (time.perf_counter() - t0)
        if not math.isfinite(terms["loss"]):
            raise self._diverged(f"the loss became {terms['loss']}", epoch, step, f"terms: {terms}")
        lr = current_learning_rate(self.optimizer)
        shown = {k: v for k, v in terms.items() if not k.endswith(_MINING_SUFFIXES)}
        progress.update(step + 1, {**shown, "lr": lr, "img/s": images_per_second})
        self.checkpoint.step_in_epoch.assign(step + 1)
        if self.writer and global_step % max(1, self.options.log_every_steps) == 0:
            with self.writer.as_default(step=global_step):
                for k, v in terms.items():
                    tf.summary.scalar(f"train/{k}", v)
                tf.summary.scalar("train/learning_rate", lr)
                tf.summary.scalar("train/images_per_second", images_per_second)
        every = self.options.checkpoint_every_steps
        if every and global_step % every == 0 and step + 1 < steps_per_epoch:
            self._save_if_finite(global_step, epoch, step)

    def _save_if_finite(self, global_step, epoch, step):
        """Checkpoints the stage unless a weight or optimiser slot overflowed (a finite loss can precede that).

        A non-finite state is never written over the last good checkpoint: `TrainingDiverged` names it.
        """
        for v in [*self.model.trainable_variables, *self.optimizer.variables]:
            if tf.as_dtype(v.dtype).is_floating and not bool(tf.reduce_all(tf.math.is_finite(v))):
                raise self._diverged(f"{v.path} became non-finite", epoch, step, "the loss was still finite")
        self.checkpoint.save(global_step)

    def _diverged(self, what, epoch, step, detail):
        """The `TrainingDiverged` of a non-finite loss or state, naming the checkpoint that is kept."""
        return TrainingDiverged(
            f"{self.name}: {what} at epoch {epoch + 1}, step {step + 1} ({detail}). Training stopped; the last "
            f"good checkpoint is kept: {self.checkpoint.latest or '(none written yet)'}. Lower the learning rate "
            "or check the data."
        )

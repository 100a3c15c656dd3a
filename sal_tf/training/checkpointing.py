"""Fault-tolerant checkpoints of a training stage.

A `tf.train.Checkpoint` holds the model, the optimizer (slots, iteration
count, hence the learning-rate schedule position), the epoch and the step
within the epoch (the data position: each epoch's input is rebuilt from
`(seed, epoch)` and the first `step` batches are skipped). TensorFlow writes
the shard files first and then atomically replaces the `checkpoint` state
file, so a run killed mid-save resumes from the previous complete checkpoint.

Under MultiWorkerMirroredStrategy every worker must take part in a save; only
the chief writes into the model dir, the others into a scratch folder that is
deleted afterwards.
"""

import os
import shutil

import tensorflow as tf


class StageCheckpoint:
    """Checkpoint manager of one stage, aware of the chief/worker split."""

    def __init__(self, directory, model, optimizer, chief=True, worker=0, max_to_keep=3, extra=None):
        """`extra`: {name: trackable} saved beside the model (e.g. center-loss centres and their optimiser)."""
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, epoch=self.epoch, step_in_epoch=self.step_in_epoch, **(extra or {})
        )
        self.chief = chief
        self.directory = directory if chief else os.path.join(directory, f".worker{worker}_tmp")
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=max_to_keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def restore(self):
        """Restores the latest checkpoint, if any. Returns its path or None."""
        path = self.manager.latest_checkpoint
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step):
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
        return path

"""Training tasks (TF Model Garden's `base_task` pattern): what to build and how to evaluate it.

A task owns build-model / build-inputs / build-losses / evaluate / pictures for one problem;
`sal_tf.training.experiment.Experiment` runs any task's stages with the generic loop.
"""

from sal_tf.training.tasks.base import Evaluation, Task
from sal_tf.training.tasks.cifar import CifarTask
from sal_tf.training.tasks.reid import ReIDTask

__all__ = ["CifarTask", "Evaluation", "ReIDTask", "Task"]

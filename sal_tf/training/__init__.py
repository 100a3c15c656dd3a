"""Training: configs, the experiment runner, tasks and the commands' run functions.

    from sal_tf.training import TrainConfig, train_reid
    train_reid(TrainConfig.demo(model_dir="runs/demo"))           # what `python -m trainers.market` runs

The configs (`sal_tf/training/config.py`, TF-free) are imported with the package; `Experiment`, the
tasks and the run functions (`sal_tf/training/commands.py`) import TensorFlow, so they are resolved
on first use and `import sal_tf.training` stays cheap (a command line's `--help` needs only configs).
"""

from sal_tf.training.config import (
    CHOICES,
    LOSSES,
    STAGES,
    STRATEGIES,
    WEIGHT_DECAY_MODES,
    CifarTrainConfig,
    ConfigMismatch,
    Stage,
    StageConfig,
    TrainConfig,
)

_LAZY = {
    "Experiment": "sal_tf.training.experiment",
    "Task": "sal_tf.training.tasks",
    "ReIDTask": "sal_tf.training.tasks",
    "CifarTask": "sal_tf.training.tasks",
    "load_reid_data": "sal_tf.training.commands",
    "train_reid": "sal_tf.training.commands",
    "train_cifar": "sal_tf.training.commands",
    "run_table1": "sal_tf.training.commands",
    "TrainingDiverged": "sal_tf.training.loop",
}

__all__ = [  # the configs above and the lazy names
    "CHOICES",
    "CifarTask",
    "CifarTrainConfig",
    "ConfigMismatch",
    "Experiment",
    "LOSSES",
    "ReIDTask",
    "STAGES",
    "STRATEGIES",
    "Stage",
    "StageConfig",
    "Task",
    "TrainConfig",
    "TrainingDiverged",
    "WEIGHT_DECAY_MODES",
    "load_reid_data",
    "run_table1",
    "train_cifar",
    "train_reid",
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sal_tf.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

"""Training: configs, the experiment runner, tasks and the commands' run functions (the generic trainer).

    from sal_tf.training import TrainConfig, train_reid
    train_reid(TrainConfig.demo(model_dir="runs/demo"))           # what `python -m trainers.market` runs

The configs (`sal_tf/training/config.py`, TF-free) are imported with the package; `Experiment`, the
tasks and the run functions (`sal_tf/training/commands.py`) import TensorFlow, so they are resolved
on first use and `import sal_tf.training` stays cheap (a command line's `--help` needs only configs).
The paper's experiments (Table 1, Tables 2 / 3) run on this trainer from `sal_tf.experiments`; the
trainers' flags are `sal_tf/cli/train_flags.py`.
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
from sal_tf.utils.lazy import lazy_module_attrs

_LAZY = {
    "Experiment": "sal_tf.training.experiment",
    "Task": "sal_tf.training.tasks",
    "ReIDTask": "sal_tf.training.tasks",
    "CifarTask": "sal_tf.training.tasks",
    "load_reid_data": "sal_tf.training.commands",
    "train_reid": "sal_tf.training.commands",
    "train_cifar": "sal_tf.training.commands",
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
    "train_cifar",
    "train_reid",
]


__getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__)

"""`Experiment` (`sal_tf/training/experiment.py`) without training: the precision policy stays the run's own,
and the `Task` hooks are declared with `abc` (`sal_tf/training/tasks/base.py`)."""

import keras
import pytest

from sal_tf.training.config import TrainConfig
from sal_tf.training.experiment import Experiment
from sal_tf.training.tasks import CifarTask, Evaluation, ReIDTask, Task


class ThreeClassTask(Task):
    """Every hook, none used: enough to build the stage's model."""

    data_name = "nothing"
    num_classes = 3

    def build_inputs(self, stage, epoch, num_replicas=1):
        raise AssertionError("not trained here")

    def steps_per_epoch(self, stage, num_replicas=1):
        return 1

    def evaluate(self, model, tag, out_dir=None):
        return Evaluation({})

    def format_results(self, res):
        return ""

    def log_results(self, prefix, res):
        pass


@pytest.fixture
def global_policy():
    """A non-default global policy set by the caller (restored after the test)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("bfloat16")
    yield "bfloat16"
    keras.config.set_dtype_policy(before)


@pytest.mark.parametrize(("mixed", "compute"), [(False, "float32"), (True, "float16")])
def test_mixed_precision_is_the_models_not_the_process(tmp_path, global_policy, mixed, compute):
    config = TrainConfig(
        model_dir=str(tmp_path),
        preset="tiny",
        backbone_weights="none",
        loss="softmax",
        mixed_precision=mixed,
        verbose=0,
    )
    experiment = Experiment(config, ThreeClassTask(config))
    assert keras.config.dtype_policy().name == global_policy  # constructing changes nothing global
    model = experiment.build_model(config.stages()[0])
    assert keras.config.dtype_policy().name == global_policy  # nor does building the stage's model
    assert model.get_layer("conv1_conv").compute_dtype == compute
    assert model.get_layer("conv1_conv").variable_dtype == "float32"
    assert model.get_layer("classifier").compute_dtype == "float32"  # logits stay float32


def test_a_task_missing_a_hook_cannot_be_instantiated():
    assert Task.__abstractmethods__ == {"build_inputs", "steps_per_epoch", "evaluate", "format_results", "log_results"}
    assert not ReIDTask.__abstractmethods__ and not CifarTask.__abstractmethods__
    for name in Task.__abstractmethods__:  # leave out one hook at a time
        incomplete = type("Incomplete", (Task,), {k: lambda *a, **k: None for k in Task.__abstractmethods__ - {name}})
        with pytest.raises(TypeError, match=name):
            incomplete(TrainConfig())
    assert ThreeClassTask(TrainConfig()).attention_images(2) is None  # optional hook: no pictures

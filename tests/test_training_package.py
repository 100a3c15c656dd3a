"""Public surfaces of `sal_tf.training`, `sal_tf.experiments`, `sal_tf.data` and `sal_tf.models`: importing
them is cheap (no TensorFlow), and the names resolved on first use (`sal_tf/utils/lazy.py`) are the
modules' own."""

import json
import subprocess
import sys

from tests.conftest import REPO

CHEAP_IMPORTS = """
import json, sys
import sal_tf.training, sal_tf.experiments, sal_tf.data, sal_tf.models
from sal_tf.training import TrainConfig, CifarTrainConfig, StageConfig
from sal_tf.cli import train_flags
from sal_tf.experiments import SETTINGS, PAPER_TABLES
from sal_tf.data import load_dataset, dataset_name, LAYOUTS
from sal_tf.models.architecture import DEPTHS
from sal_tf.models.presets import PRESETS
heavy = sorted({"tensorflow", "keras", "matplotlib"} & set(sys.modules))
print(json.dumps({"heavy": heavy, "numpy": "numpy" in sys.modules}))
"""


def test_importing_the_configs_data_parsers_and_flags_imports_no_tensorflow():
    out = subprocess.run([sys.executable, "-c", CHEAP_IMPORTS], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["heavy"] == []


def test_lazy_names_are_the_modules_own():
    import sal_tf.data
    import sal_tf.experiments
    import sal_tf.models
    import sal_tf.training
    from sal_tf.data import pipelines, samplers
    from sal_tf.experiments import ablation, paper_run
    from sal_tf.models import factory
    from sal_tf.training import commands, experiment, loop

    assert sal_tf.training.Experiment is experiment.Experiment and sal_tf.training.train_reid is commands.train_reid
    assert sal_tf.training.TrainingDiverged is loop.TrainingDiverged and not hasattr(sal_tf.training, "run_table1")
    assert sal_tf.experiments.run_table1 is ablation.run_table1 and sal_tf.experiments.run_paper is paper_run.run_paper
    assert sal_tf.data.build_train_dataset is pipelines.build_train_dataset
    assert sal_tf.data.build_query_gallery_datasets is pipelines.build_query_gallery_datasets
    assert sal_tf.data.SAMPLINGS is samplers.SAMPLINGS
    assert sal_tf.models.build_model is factory.build_model
    for package in (sal_tf.training, sal_tf.experiments, sal_tf.data, sal_tf.models):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
            assert name in dir(package)


def test_the_lazy_loader_refuses_unknown_names_and_warns_on_a_renamed_one():
    import pytest

    import sal_tf
    import sal_tf.evaluation
    import sal_tf.experiments
    from sal_tf.evaluation import rank

    with pytest.raises(AttributeError, match="module 'sal_tf.experiments' has no attribute 'run_table2'"):
        sal_tf.experiments.run_table2  # noqa: B018
    with pytest.warns(DeprecationWarning, match="sal_tf.evaluation.format_table is renamed format_rank_table"):
        assert sal_tf.evaluation.format_table is rank.format_rank_table
    assert "format_table" not in dir(sal_tf.evaluation) and "load_embedder" in dir(sal_tf)

"""The seeds runner on the strong-baseline recipe: one folder per seed, mean ± std, provenance in every
result, a finished seed reused (not retrained), and the center-loss centres saved in the checkpoints."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from sal_tf.training.recipes import apply_recipe
from sal_tf.training.seeds import SUMMARY_JSON, SUMMARY_MD, run_seeds
from sal_tf.training.tasks import ReIDTask
from tests.conftest import make_config


def bot_config(model_dir):
    config = apply_recipe(make_config(model_dir, rerank=True), "bot")
    return dataclasses.replace(config, stage1=dataclasses.replace(config.stage1, epochs=1, batch_size=16))


@pytest.mark.slow
def test_two_seeds_of_the_bot_recipe(tmp_path, data):
    config = bot_config(tmp_path / "run")
    summary = run_seeds(config, lambda c: ReIDTask(c, data), 2)
    assert summary["seeds"] == [0, 1]
    for variant in ("plain", "re-ranked"):
        spread = summary["stages"]["stage1"][variant]["mAP"]
        values = [summary["per_seed"][s]["stage1"][variant]["mAP"] for s in ("0", "1")]
        assert spread["n"] == 2 and np.isclose(spread["mean"], np.mean(values))
        assert np.isclose(spread["std"], np.std(values, ddof=1))
    assert json.loads((tmp_path / "run" / SUMMARY_JSON).read_text())["seeds"] == [0, 1]
    assert "mean ± sample std" in (tmp_path / "run" / SUMMARY_MD).read_text()

    for seed in (0, 1):
        results = json.loads((tmp_path / "run" / f"seed_{seed}" / "results.json").read_text())
        assert results["config"]["seed"] == seed and results["config"]["recipe"] == "bot"
        p = results["stage1"]["provenance"]
        assert (p["recipe"], p["seed"], p["precision"], p["deterministic"]) == ("bot", seed, "float32", False)
        assert set(p["versions"]) >= {"sal_tf", "tensorflow", "keras"} and p["versions"]["tensorflow"] == tf.__version__
        assert p["machine"]["cpu_model"] and isinstance(p["machine"]["gpus"], list)

    # The centres and their optimiser are in the stage's checkpoint.
    ckpt = tf.train.latest_checkpoint(str(tmp_path / "run" / "seed_0" / "stage1"))
    names = [name for name, _ in tf.train.list_variables(ckpt)]
    centres = [n for n in names if n.startswith("side_variables/")]
    assert centres and any(n.startswith("side_optimizer/") for n in names)
    assert tf.train.load_variable(ckpt, centres[0]).shape == (data.num_train_pids, 128)

    # A finished seed is reused, not retrained.
    model_file = tmp_path / "run" / "seed_1" / "stage1.keras"
    before = os.path.getmtime(model_file)
    again = run_seeds(config, lambda c: ReIDTask(c, data), 2)
    assert os.path.getmtime(model_file) == before
    assert again["stages"] == summary["stages"]

"""The Table 1 runner's recipe rows (B: the BoT baseline, SB: SAL on it) and its mean ± std over seeds."""

import dataclasses
import os

import pytest
from absl import flags

from sal_tf.cli import train_flags
from sal_tf.experiments.ablation import parse_settings, setting_config, summary_final
from sal_tf.experiments.ablation_report import build_tables
from sal_tf.training.recipes import apply_recipe
from sal_tf.training.seeds import summarize_seeds
from tests.conftest import make_config


def test_recipe_rows_train_the_whole_recipe(tmp_path):
    base = make_config(tmp_path)
    bot = setting_config(base, "B")
    assert bot == dataclasses.replace(apply_recipe(base, "bot"), model_dir=os.path.join(str(tmp_path), "setting_B"))
    sal_bot = setting_config(base, "SB")
    assert sal_bot.recipe == "sal_bot" and sal_bot.dilation and sal_bot.sac and sal_bot.bnneck
    assert setting_config(base, "8").recipe == "paper" and not setting_config(base, "8").bnneck
    assert parse_settings("sb,b") == ["SB", "B"]


def test_tables_have_the_recipe_column_and_mean_std():
    base = make_config("x")
    results = {
        "8": {"mAP": 0.5, "rank1": 0.75, "seeds": [0]},
        "SB": {"mAP": 0.6, "rank1": 0.7, "mAP_std": 0.02, "rank1_std": 0.01, "seeds": [0, 1, 2]},
    }
    md, table = build_tables(base, ["8", "B", "SB"], results, "market1501")
    assert "| 8 | paper | softmax + quadruplet | ✓ | ✓ | ✓ | ✓ | 50.0 | 75.0 | 81.6 | 92.8 |" in md
    assert "| B | bot | softmax + triplet | – | – | – | – | pending | pending | – | – |" in md
    assert "| SB | sal_bot | softmax + triplet | ✓ | ✓ | ✓ | ✓ | 60.0 ± 2.0 | 70.0 ± 1.0 | – | – |" in md
    assert "Mean ± sample std over 1/3 seeds." in md
    assert table["settings"][2]["mAP_std"] == pytest.approx(2.0)


def test_a_setting_over_seeds_keeps_the_final_stages_means_and_stds():
    per_seed = {
        s: {"stage1": {"mAP": m, "rank1": r, "mINP": 0.1, "rerank": {"mAP": m + 0.1, "rank1": r, "mINP": 0.1}}}
        for s, m, r in ((0, 0.4, 0.5), (1, 0.6, 0.7))
    }
    final = summary_final(summarize_seeds(per_seed), apply_recipe(make_config("x"), "bot"))
    assert final["mAP"] == pytest.approx(0.5) and final["rank1"] == pytest.approx(0.6)
    assert final["mAP_std"] == pytest.approx(0.1414, abs=1e-4) and final["rerank"]["mAP"] == pytest.approx(0.6)


def test_ablation_refuses_a_recipe_flag():
    flag_values = flags.FlagValues()
    train_flags.define_ablation_flags(flag_values=flag_values)
    flag_values(["trainers.ablation", "--recipe=bot"])
    with pytest.raises(ValueError, match="--settings=B,SB"):
        train_flags.ablation_config_from_flags(flag_values)

"""Recipes (`--recipe`), the spread over seeds and the paper-tables report: pure-config tests (no training)."""

import dataclasses
import json
import os

import numpy as np
import pytest

from sal_tf.experiments.paper_tables import build_report, find_dataset, parse_datasets
from sal_tf.training.config import TrainConfig
from sal_tf.training.recipes import RECIPES, apply_recipe, recipe_changes
from sal_tf.training.seeds import format_seeds_table, seed_config, spread, summarize_seeds


def test_paper_recipe_is_todays_config():
    assert apply_recipe(TrainConfig(), "paper") == TrainConfig()
    assert apply_recipe(TrainConfig.demo(), "paper") == TrainConfig.demo()
    assert RECIPES["paper"] == {}


def test_bot_recipe_is_the_strong_baseline_in_one_stage():
    config = apply_recipe(TrainConfig(), "bot")
    assert config.recipe == "bot"
    assert config.model_options() == dict(depth=50, dilation=False, multi_level=False, stage6=False, bnneck=True,
                                           last_stride=1)  # fmt: skip
    (stage,) = config.stages()
    assert stage.number == 1 and stage.init_from is None
    losses = stage.losses
    assert losses["softmax"] and losses["metric"] == "triplet" and not losses["sac"]
    assert (losses["label_smoothing"], losses["center_weight"], losses["triplet_margin"]) == (0.1, 5e-4, 0.3)
    s = stage.config
    assert (s.optimizer, s.learning_rate, s.epochs, s.sampling, s.batch_size, s.num_instances) == (
        "adam", 3.5e-4, 120, "pk", 64, 4)  # fmt: skip
    assert (s.warmup_epochs, s.warmup_start, s.decay_milestones, s.weight_decay) == (10, 0.1, [40, 70], 5e-4)
    assert config.random_erasing and config.center_lr == 0.5


def test_sal_bot_is_the_sal_network_on_the_baseline():
    config = apply_recipe(TrainConfig(), "sal_bot")
    bot = apply_recipe(TrainConfig(), "bot")
    assert config.dilation and config.multi_level and config.stage6 and config.sac and config.bnneck
    same = {k for k in dataclasses.asdict(bot) if k not in ("recipe", "dilation", "multi_level", "stage6", "sac")}
    assert {k: getattr(config, k) for k in same} == {k: getattr(bot, k) for k in same}


def test_on_the_demo_a_recipe_keeps_the_demos_epochs():
    demo = TrainConfig.demo()
    config = apply_recipe(demo, "bot")
    budget = demo.stage1.epochs + demo.stage2.epochs
    s = config.stage1
    assert s.epochs == budget == 34
    assert s.warmup_epochs == 3 and s.decay_milestones == [11, 20]  # BoT's 10 / 40, 70 of 120, scaled
    assert (s.warmup_start, s.sampling, s.batch_size) == (0.1, "pk", 64)
    assert (s.optimizer, s.learning_rate) == (demo.stage1.optimizer, demo.stage1.learning_rate) == ("sgd", 0.05)
    assert (config.preset, config.backbone_weights) == ("tiny", "none")


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--recipe must be one of paper\|bot\|sal_bot"):
        recipe_changes("strong", TrainConfig())
    with pytest.raises(ValueError, match="--recipe"):
        TrainConfig(recipe="strong")


def test_single_stage_refuses_stage_2():
    with pytest.raises(ValueError, match="--stage=2 has nothing to train"):
        dataclasses.replace(apply_recipe(TrainConfig(), "bot"), stage="2").stages()


def results(m, r1, inp, rr=None):
    out = {"mAP": m, "rank1": r1, "mINP": inp}
    return {"stage2": dict(out, rerank=rr or dict(out))}


def test_seed_summary_is_mean_and_sample_std():
    per_seed = {0: results(0.70, 0.80, 0.30), 1: results(0.74, 0.82, 0.32), 2: results(0.78, 0.78, 0.28)}
    summary = summarize_seeds(per_seed)
    got = summary["stages"]["stage2"]["plain"]["mAP"]
    assert got["mean"] == pytest.approx(0.74) and got["std"] == pytest.approx(np.std([0.7, 0.74, 0.78], ddof=1))
    assert (got["min"], got["max"], got["n"]) == (0.70, 0.78, 3)
    assert summary["per_seed"]["1"]["stage2"]["re-ranked"]["rank1"] == 0.82
    table = format_seeds_table(summary)
    assert "| stage2 | plain | 74.0 ± 4.0 (70.0–78.0) |" in table
    assert "seeds 0, 1, 2" in table
    assert spread([0.5])["std"] == 0.0
    json.dumps(summary)


def test_seed_folders():
    config = seed_config(TrainConfig(model_dir="runs/x", seed=3), 4)
    assert (config.seed, config.model_dir) == (4, os.path.join("runs/x", "seed_4"))


def test_datasets_are_found_by_their_usual_folder_names(tmp_path):
    (tmp_path / "Market-1501-v15.09.15").mkdir()
    (tmp_path / "DukeMTMC-reID").mkdir()
    assert find_dataset("market1501", str(tmp_path)) == str(tmp_path / "Market-1501-v15.09.15")
    assert find_dataset("dukemtmc", str(tmp_path)) == str(tmp_path / "DukeMTMC-reID")
    assert find_dataset("dukemtmc", None, override=str(tmp_path)) == str(tmp_path)
    with pytest.raises(ValueError, match="--market_dir=PATH"):
        find_dataset("market1501", str(tmp_path / "DukeMTMC-reID"))
    assert parse_datasets("duke,market") == ["dukemtmc", "market1501"]
    with pytest.raises(ValueError, match="--datasets: unknown dataset 'cuhk03'"):
        parse_datasets("market,cuhk03")


def test_report_puts_the_papers_rows_beside_the_measured_ones():
    summary = summarize_seeds({0: results(0.5, 0.6, 0.2, dict(mAP=0.55, rank1=0.65, mINP=0.25))})
    markdown, table = build_report(["market1501", "dukemtmc"], {"market1501": summary}, "notes")
    assert "### Table 2: Market-1501" in markdown and "### Table 3: DukeMTMC-reID" in markdown
    assert "| Ours | 81.6 | 92.8 | 50.0 | 60.0 | 20.0 |" in markdown
    assert "| Ours + re-rank | 91.2 | 93.3 | 55.0 | 65.0 | 25.0 |" in markdown
    assert "| Ours | 65.4 | 82.1 | pending | pending | pending |" in markdown
    assert "| Ours + re-rank | 72.9 | 85.1 |" in markdown
    assert [r["paper_mAP"] for r in table["rows"]] == [81.6, 91.2, 65.4, 72.9]


def test_a_config_json_from_before_the_recipe_fields_still_resumes():
    """A model_dir written before these fields existed matches when they keep their defaults."""
    config = TrainConfig.demo()
    stored = config.to_dict()
    for name in ("recipe", "bnneck", "last_stride", "label_smoothing", "center_weight", "single_stage"):
        del stored[name]
    for name in ("optimizer", "warmup_start", "decay_milestones"):
        del stored["stage1"][name], stored["stage2"][name]
    assert config.differences(stored) == {}
    assert set(apply_recipe(config, "bot").differences(stored)) >= {"recipe", "bnneck", "stage1"}


def parsed_reid(*argv):
    from absl import flags

    from sal_tf.cli import train_flags

    flag_values = flags.FlagValues()
    train_flags.define_reid_flags("market1501", flag_values=flag_values)
    flag_values(["trainers.market", *argv])
    return train_flags.reid_config_from_flags(flag_values)


def test_the_recipe_flag_sets_the_recipe_and_explicit_flags_win(tmp_path):
    assert parsed_reid("--recipe=bot") == apply_recipe(TrainConfig.demo(), "bot")
    data = f"--data_dir={tmp_path}"
    assert parsed_reid(data, "--recipe=sal_bot") == dataclasses.replace(
        apply_recipe(TrainConfig(), "sal_bot"), data_dir=str(tmp_path)
    )
    config = parsed_reid("--recipe=bot", "--nobnneck", "--stage1_epochs=5", "--lr_milestones=2,4", "--optimizer=adam")
    assert not config.bnneck and config.label_smoothing == 0.1 and config.center_weight == 5e-4  # the rest stays
    assert (config.stage1.epochs, config.stage1.decay_milestones, config.stage1.optimizer) == (5, [2, 4], "adam")
    assert config.stage1.warmup_start == 0.1 and config.stage1.sampling == "pk"
    with pytest.raises(ValueError, match="--lr_milestones: expected comma-separated whole epochs"):
        parsed_reid("--lr_milestones=4,x")

"""Table 1 ablation runner: setting reading, per-setting folders, tables, skip on rerun, CLI defaults."""

import json
import os

import pytest

from tests.conftest import make_config


def base_config(model_dir, **overrides):
    return make_config(model_dir, **overrides)


def test_table1_reading_and_stages(tmp_path):
    from sal_tf.experiments.ablation import parse_settings, setting_config
    from sal_tf.experiments.table1 import SETTINGS

    assert list(SETTINGS) == ["1", "2", "3", "3T", "4", "5", "6", "7", "8", "B", "SB"]
    base = base_config(tmp_path, loss="softmax", dilation=True, multi_level=True, sac=True, stage="1")
    expect = {  # id: (loss, DIL, multi-level, SAC, stages, paper mAP, paper R1); no DIL = no stage6
        "1": ("softmax", False, False, False, [1], 68.5, 83.7),
        "2": ("quadruplet", False, False, False, [2], 60.6, 77.2),
        "3": ("softmax+quadruplet", False, False, False, [1, 2], 73.5, 87.3),
        "3T": ("softmax+triplet", False, False, False, [1, 2], 71.6, 84.3),
        "4": ("softmax", True, True, False, [1], 72.7, 85.6),
        "5": ("softmax+quadruplet", True, True, False, [1, 2], 78.4, 90.5),
        "6": ("softmax", True, True, True, [1], 76.7, 88.2),
        "7": ("quadruplet", True, True, True, [2], 66.0, 80.3),
        "8": ("softmax+quadruplet", True, True, True, [1, 2], 81.6, 92.8),
    }
    for sid, (loss, dil, multi, sac, stages, m, r1) in expect.items():
        cfg = setting_config(base, sid)
        assert (cfg.loss, cfg.dilation, cfg.multi_level, cfg.sac) == (loss, dil, multi, sac), sid
        assert cfg.stage6 is dil, sid  # stage6 undoes dilation's gridding (§3.1): plain ResNet50 without DIL
        assert [s.number for s in cfg.stages()] == stages, sid  # --stage of the base is overridden to all
        assert cfg.model_dir == os.path.join(str(tmp_path), f"setting_{sid}")
        assert SETTINGS[sid]["paper"] == (m, r1)
        assert cfg.stage1 == base.stage1 and cfg.preset == base.preset  # the trainer's settings otherwise
    s7 = setting_config(base, "7").stages()[0]
    assert s7.losses["softmax"] is False and s7.losses["metric"] == "quadruplet" and s7.losses["sac"] is True
    assert s7.init_from is None  # metric only: stage 2 from the backbone initialisation
    assert setting_config(base, "3T").stages()[1].losses["metric"] == "triplet"
    assert parse_settings("8, 3(T),1,8") == ["8", "3T", "1"]
    assert parse_settings("all") == list(SETTINGS)
    with pytest.raises(ValueError, match="unknown Table 1 setting '9'"):
        parse_settings("1,9")


@pytest.mark.slow
def test_two_settings_write_tables_and_skip_when_finished(tmp_path, data):
    from sal_tf.experiments.ablation import RESULT_FILE, run_ablation

    base = base_config(tmp_path / "abl")
    out = run_ablation(base, data, ["1", "2"])
    assert out["ran"] == ["1", "2"] and out["skipped"] == []
    for sid, stage in (("1", "stage1"), ("2", "stage2")):
        folder = tmp_path / "abl" / f"setting_{sid}"
        assert (folder / f"{stage}.keras").exists() and (folder / "config.json").exists()
        with open(folder / "results.json") as f:
            trainer_results = json.load(f)
        with open(folder / RESULT_FILE) as f:
            result = json.load(f)
        assert result["mAP"] == pytest.approx(trainer_results[stage]["mAP"])
        assert result["rank1"] == pytest.approx(trainer_results[stage]["rank1"])
    assert not (tmp_path / "abl" / "setting_1" / "stage2.keras").exists()  # softmax only: stage 1 only
    assert not (tmp_path / "abl" / "setting_2" / "stage1.keras").exists()  # metric only: stage 2 only

    with open(tmp_path / "abl" / "table1.json") as f:
        table = json.load(f)
    rows = {r["setting"]: r for r in table["settings"]}
    assert list(rows) == ["1", "2"] and rows["1"]["paper_mAP"] == 68.5 and rows["2"]["paper_rank1"] == 77.2
    with open(tmp_path / "abl" / "setting_2" / RESULT_FILE) as f:
        assert rows["2"]["mAP"] == pytest.approx(100 * json.load(f)["mAP"])
    md = (tmp_path / "abl" / "table1.md").read_text()
    assert "| 1 | paper | softmax | – | – | – | – |" in md and "| 68.5 | 83.7 |" in md
    assert f"| {rows['2']['mAP']:.1f} | {rows['2']['rank1']:.1f} | 60.6 | 77.2 |" in md

    # Rerun: nothing is trained again (the files are untouched), the table is rewritten.
    stamp = os.path.getmtime(tmp_path / "abl" / "setting_1" / "stage1.keras")
    again = run_ablation(base, data, "1,2")
    assert again["ran"] == [] and again["skipped"] == ["1", "2"]
    assert os.path.getmtime(tmp_path / "abl" / "setting_1" / "stage1.keras") == stamp
    assert again["table"]["settings"] == table["settings"]

    # A finished setting with other training settings is refused before anything trains.
    changed = base_config(tmp_path / "abl", stage1=base.stage1.__class__(epochs=2, learning_rate=0.05, batch_size=16))
    with pytest.raises(ValueError, match="different configuration"):
        run_ablation(changed, data, ["1"])


def test_pending_rows_and_no_paper_column_for_duke(tmp_path):
    from sal_tf.experiments.ablation_report import build_tables

    base = base_config(tmp_path, dataset="dukemtmc")
    md, table = build_tables(base, ["1", "8"], {"8": {"mAP": 0.5, "rank1": 0.75}}, "dukemtmc")
    assert table["settings"][0]["status"] == "pending" and table["settings"][1]["mAP"] == 50.0
    assert table["settings"][1]["paper_mAP"] is None
    assert "| 8 | paper | softmax + quadruplet | ✓ | ✓ | ✓ | ✓ | 50.0 | 75.0 | – | – |" in md


def test_cli_demo_defaults_and_help_listing():
    from absl import flags

    from sal_tf.cli import train_flags

    def config_and_help(*argv):
        flag_values = flags.FlagValues()
        train_flags.define_ablation_flags(flag_values=flag_values)
        flag_values(["trainers.ablation", *argv])
        return train_flags.ablation_config_from_flags(flag_values), flag_values.module_help(train_flags.__name__)

    cfg, help_text = config_and_help("--dataset=duke", "--verbose=0")
    assert cfg.dataset == "demo" and cfg.preset == "tiny" and cfg.model_dir == os.path.join("runs", "ablation_demo")
    assert cfg.stage1.epochs == 12 and cfg.stage2.epochs == 5 and cfg.eval_untrained is False
    for flag in ("--settings", "--stage1_epochs", "--max_steps_per_epoch", "market"):  # what --help lists
        assert flag in help_text, flag
    cfg, _ = config_and_help("--dataset=duke", "--data_dir=/x", "--stage1_epochs=3")
    assert cfg.dataset == "dukemtmc" and cfg.preset == "paper" and cfg.stage1.epochs == 3
    assert cfg.model_dir == os.path.join("runs", "ablation_dukemtmc")

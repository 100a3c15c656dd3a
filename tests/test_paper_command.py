"""`python -m trainers.paper`: both datasets found by their folder names (Market and Duke layouts),
trained with both stages, evaluated with and without re-ranking, the paper's Tables 2 / 3 beside the
measured numbers, and a rerun that retrains nothing."""

import json
import os
import re
import shutil
import sys

import pytest
from absl import flags

from sal_tf.cli import train_flags
from tests.conftest import QUICK_DEPTH, run_cmd

# Demo scale: the tiny preset, a couple of steps per stage, and the plain ResNet switches (both stages
# still train; the SAL network's build and trace would double the time on 2 cores).
SMALL = ["--preset=tiny", f"--depth={QUICK_DEPTH}", "--backbone_weights=none", "--stage1_epochs=1", "--stage2_epochs=1", "--batch_size=16",
         "--num_ids=4", "--max_steps_per_epoch=2", "--checkpoint_every_steps=0", "--nodilation", "--nomulti_level",
         "--nostage6", "--nosac"]  # fmt: skip


def duke_copy(market_root, duke_root):
    """The Market-layout folders renamed to DukeMTMC-reID names: `0005_c2_f0046985.jpg`."""
    for i, folder in enumerate(("bounding_box_train", "query", "bounding_box_test")):
        os.makedirs(os.path.join(duke_root, folder))
        for j, name in enumerate(sorted(os.listdir(os.path.join(market_root, folder)))):
            pid, cam = re.match(r"^(-?\d+)_c(\d)", name).groups()
            new = f"{int(pid):04d}_c{cam}_f{i:02d}{j:05d}.jpg" if int(pid) >= 0 else f"-1_c{cam}_f{i:02d}{j:05d}.jpg"
            shutil.copy(os.path.join(market_root, folder, name), os.path.join(duke_root, folder, new))


def paper_flags(*argv):
    flag_values = flags.FlagValues()
    train_flags.define_paper_flags(flag_values=flag_values)
    flag_values(["trainers.paper", *argv])
    return train_flags.paper_config_from_flags(flag_values)


def test_flags_find_the_datasets_and_keep_the_paper_config(tmp_path):
    (tmp_path / "Market-1501").mkdir()
    (tmp_path / "DukeMTMC-reID").mkdir()
    config, dirs = paper_flags(f"--data_root={tmp_path}", "--model_dir=out")
    assert dirs == {"market1501": str(tmp_path / "Market-1501"), "dukemtmc": str(tmp_path / "DukeMTMC-reID")}
    assert (config.preset, config.loss, config.stage, config.rerank, config.recipe) == (
        "paper", "softmax+quadruplet", "all", True, "paper")  # fmt: skip
    config, dirs = paper_flags(f"--market_dir={tmp_path}", "--datasets=market", "--recipe=sal_bot")
    assert dirs == {"market1501": str(tmp_path)} and config.recipe == "sal_bot"
    with pytest.raises(ValueError, match="--data_root is required"):
        paper_flags("--datasets=duke")
    with pytest.raises(ValueError, match="--duke_dir=PATH"):
        paper_flags(f"--data_root={tmp_path / 'Market-1501'}", "--datasets=duke")


@pytest.mark.slow
def test_paper_command_end_to_end_on_both_layouts(tmp_path, data_root):
    root = tmp_path / "data"
    shutil.copytree(data_root, root / "Market-1501-v15.09.15")
    duke_copy(data_root, str(root / "DukeMTMC-reID"))
    out = tmp_path / "paper"
    cmd = [sys.executable, "-m", "trainers.paper", f"--data_root={root}", f"--model_dir={out}", *SMALL]
    proc = run_cmd(cmd, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for dataset in ("market1501", "dukemtmc"):
        for stage in ("stage1", "stage2"):
            assert (out / dataset / f"{stage}.keras").exists(), (dataset, stage)
        results = json.loads((out / dataset / "results.json").read_text())
        assert results["config"]["dataset"] == dataset and "rerank" in results["stage2"]
    report = json.loads((out / "paper_tables.json").read_text())
    rows = {(r["table"], r["row"]): r for r in report["rows"]}
    assert (rows[("Table 2", "Ours")]["paper_mAP"], rows[("Table 2", "Ours")]["paper_rank1"]) == (81.6, 92.8)
    assert (rows[("Table 3", "Ours + re-rank")]["paper_mAP"], rows[("Table 3", "Ours")]["paper_mAP"]) == (72.9, 65.4)
    market = json.loads((out / "market1501" / "results.json").read_text())["stage2"]
    assert rows[("Table 2", "Ours")]["mAP"]["mean"] == pytest.approx(market["mAP"])
    assert rows[("Table 2", "Ours + re-rank")]["rank1"]["mean"] == pytest.approx(market["rerank"]["rank1"])
    markdown = (out / "paper_tables.md").read_text()
    assert "### Table 2: Market-1501" in markdown and "### Table 3: DukeMTMC-reID" in markdown
    assert f"| Ours | 81.6 | 92.8 | {100 * market['mAP']:.1f} |" in markdown
    assert "Table 2: Market-1501" in proc.stdout

    stamp = os.path.getmtime(out / "dukemtmc" / "stage2.keras")
    again = run_cmd(cmd, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert os.path.getmtime(out / "dukemtmc" / "stage2.keras") == stamp
    assert "already finished" in again.stdout and (out / "paper_tables.md").read_text() == markdown

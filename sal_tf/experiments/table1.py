"""Our reading of Table 1 (paper §4.3): each setting's switches and the paper's mAP / Rank-1.

BUILD.md "Table 1 ablation" explains the reading. Rows B and SB go beyond the paper: the strong
baseline (BoT, Luo et al. 2019) and SAL on it, each trained with its whole recipe. Pure data (no
TensorFlow), so the command line can list the settings in `--help` before anything heavy is imported.
"""

from sal_tf.training.recipes import RECIPES

_PLAIN = dict(dilation=False, multi_level=False, stage6=False, recipe="paper")
_SAL = dict(dilation=True, multi_level=True, stage6=True, recipe="paper")
SWITCHES = ("loss", "dilation", "multi_level", "stage6", "sac")


def _recipe_row(recipe):
    """A row trained with a whole recipe (`sal_tf/training/recipes.py`); the paper has no such row."""
    return dict({k: RECIPES[recipe][k] for k in SWITCHES}, recipe=recipe, paper=None)


SETTINGS = {
    "1": dict(loss="softmax", **_PLAIN, sac=False, paper=(68.5, 83.7)),
    "2": dict(loss="quadruplet", **_PLAIN, sac=False, paper=(60.6, 77.2)),
    "3": dict(loss="softmax+quadruplet", **_PLAIN, sac=False, paper=(73.5, 87.3)),
    "3T": dict(loss="softmax+triplet", **_PLAIN, sac=False, paper=(71.6, 84.3)),
    "4": dict(loss="softmax", **_SAL, sac=False, paper=(72.7, 85.6)),
    "5": dict(loss="softmax+quadruplet", **_SAL, sac=False, paper=(78.4, 90.5)),
    "6": dict(loss="softmax", **_SAL, sac=True, paper=(76.7, 88.2)),
    "7": dict(loss="quadruplet", **_SAL, sac=True, paper=(66.0, 80.3)),
    "8": dict(loss="softmax+quadruplet", **_SAL, sac=True, paper=(81.6, 92.8)),
    # Beyond the paper: the strong baseline (BoT) and SAL on it, each with its whole recipe.
    "B": _recipe_row("bot"),
    "SB": _recipe_row("sal_bot"),
}
SETTING_IDS = tuple(SETTINGS)

# The Table 1 runner on the demo data (no --data_dir): half of the single demo run's epochs per
# setting (stage 1: 12, stage 2: 5; the stage-1 warm-up and lr-decay epochs scale alike), no
# untrained evaluation (`sal_tf.cli.train_flags.ablation_config_from_flags`). Explicit flags win.
ABLATION_DEMO_EPOCHS = dict(stage1=12, stage2=5)

"""Training recipes (`--recipe`): named sets of `TrainConfig` values applied together.

* `paper`: the paper's training (§4.1), i.e. the config as it is: SAL network, softmax + SAC
  (stage 1), then + quadruplet-hard (stage 2), SGD with step decay.
* `bot`: the strong baseline of Luo et al. 2019, "Bag of Tricks and a Strong Baseline for Deep Person
  Re-identification" (BoT, the base of fast-reid), on the plain ResNet50 of Table 1's settings 1–3
  (no DIL, no multi-level feature, no stage6, no SAC) with last stride 1, BNNeck, label-smoothed
  cross-entropy (ε 0.1), batch-hard triplet (margin 0.3) and center loss (weight 0.0005, centres by
  their own SGD at lr 0.5), random erasing, all trained jointly in one stage on P×K = 16×4 batches
  with Adam (lr 3.5e-4, coupled weight decay 5e-4), a linear warm-up over 10 epochs from lr × 0.1
  and ×0.1 at epochs 40 and 70 of 120.
* `sal_bot`: SAL on that baseline: `bot` with the SAL network (DIL, multi-level feature, stage6)
  and the self-attention constraint.

On the demo data the recipe keeps the demo's epoch budget (stage 1 + stage 2 epochs of the base
config), with BoT's warm-up and milestones scaled to it, so the recipes compare at equal epochs, and
the demo's optimiser (`DEMO_OPTIMIZER`: SGD, lr 0.05, as the paper recipe's demo): the demo trains
the tiny network from random weights, where Adam at BoT's 3.5e-4 (set for an ImageNet start) barely
moves in 34 epochs (BUILD.md "Strong baseline"). Every trick stays.
Flags given explicitly win over the recipe (`sal_tf/cli/train_flags.py`). Pure data and
`dataclasses.replace` (no TensorFlow).
"""

import dataclasses

BOT_EPOCHS = 120
BOT_STAGE = dict(
    epochs=BOT_EPOCHS,
    optimizer="adam",
    learning_rate=3.5e-4,
    batch_size=16 * 4,
    sampling="pk",
    num_instances=4,
    warmup_epochs=10,
    warmup_start=0.1,
    decay_milestones=[40, 70],
    decay_rate=0.1,
    weight_decay=5e-4,
    weight_decay_mode="coupled",
)
_PLAIN = dict(dilation=False, multi_level=False, stage6=False, sac=False)
_SAL = dict(dilation=True, multi_level=True, stage6=True, sac=True)
_BOT_TRICKS = dict(
    last_stride=1,
    bnneck=True,
    label_smoothing=0.1,
    loss="softmax+triplet",
    triplet_margin=0.3,
    triplet_soft_margin=False,
    center_weight=5e-4,
    center_lr=0.5,
    random_erasing=True,
    single_stage=True,
)
RECIPES = {
    "paper": {},
    "bot": dict(_PLAIN, **_BOT_TRICKS),
    "sal_bot": dict(_SAL, **_BOT_TRICKS),
}
RECIPE_NAMES = tuple(RECIPES)
# The demo stage-1 fields a recipe keeps on the demo data (see the module docstring).
DEMO_OPTIMIZER = ("optimizer", "learning_rate", "momentum", "weight_decay", "weight_decay_mode")


def check_recipe(name):
    if name not in RECIPES:
        raise ValueError(f"--recipe must be one of {'|'.join(RECIPE_NAMES)}. Received: --recipe={name!r}")
    return name


def bot_stage(epochs=BOT_EPOCHS):
    """BoT's stage values over `epochs` (warm-up and milestones scaled from its 120)."""
    if epochs == BOT_EPOCHS:
        return dict(BOT_STAGE)
    scale = epochs / BOT_EPOCHS
    return dict(
        BOT_STAGE,
        epochs=epochs,
        warmup_epochs=max(1, round(BOT_STAGE["warmup_epochs"] * scale)),
        decay_milestones=[max(1, round(m * scale)) for m in BOT_STAGE["decay_milestones"]],
    )


def recipe_changes(name, base):
    """{TrainConfig field: value} of recipe `name` on `base` (a `TrainConfig`)."""
    check_recipe(name)
    changes = dict(RECIPES[name], recipe=name)
    if name == "paper":
        return changes
    if base.dataset != "demo":
        changes["stage1"] = dataclasses.replace(base.stage1, **bot_stage())
        return changes
    stage = bot_stage(base.stage1.epochs + base.stage2.epochs)
    stage.update({name: getattr(base.stage1, name) for name in DEMO_OPTIMIZER})
    changes["stage1"] = dataclasses.replace(base.stage1, **stage)
    return changes


def apply_recipe(base, name):
    """`base` with recipe `name` applied (a new `TrainConfig`)."""
    return dataclasses.replace(base, **recipe_changes(name, base))

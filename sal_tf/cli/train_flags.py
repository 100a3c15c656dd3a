"""absl flags of the trainers and their translation into configs (flags → config; nothing else).

Every default and every set of choices is read from the configs (`sal_tf.training.config`) or the
library tuple the flag sets, never typed again here: `define_field_flag` defines a flag from a config
field (its type and default, and `config.CHOICES` of the field as an enum). With `--data_dir` the
paper's values apply (`TrainConfig()`), without it the synthetic demo's (`TrainConfig.demo()`); flags
whose default differs between the two are defined with `None` and say both values in `--help`
(`define_data_dependent_flag`). A flag given explicitly wins. `tests/test_cli_flags.py` checks that
flags and configs agree.

Each `define_*` takes `flag_values` (default: absl's `FLAGS`) and each `*_config_from_flags` reads the
same object, so the flags can be defined and parsed into a fresh `flags.FlagValues()`.
"""

import dataclasses
import os

from absl import flags

from sal_tf.data import LAYOUTS, dataset_name
from sal_tf.training.config import CHOICES, CifarTrainConfig, TrainConfig, run_folder
from sal_tf.training.recipes import apply_recipe

FLAGS = flags.FLAGS
_DEFINE = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string,
           list: flags.DEFINE_list}  # fmt: skip

# Flags named like the `TrainConfig` field they set, with their help; their defaults are the fields'.
RUNTIME_FLAGS = {
    "strategy": "tf.distribute strategy (multi_worker reads TF_CONFIG).",
    "mixed_precision": "mixed_float16 compute.",
    "jit_compile": "XLA-compile the train step (slower on CPU).",
    "seed": "Random seed (init, sampling, augmentation).",
    "deterministic": "Deterministic ops (reproducible resume).",
    "log_every_steps": "TensorBoard scalar interval in steps.",
    "max_steps_per_epoch": "Cap on steps per epoch (0: full epochs); for smoke runs.",
    "verbose": "0: quiet, 1: progress and tables, 2: also TensorFlow's native start-up logs.",
}
MODEL_FLAGS = {
    "depth": "ResNet depth of the backbone (14: one block per stage, no ImageNet weights; for quick runs).",
    "dilation": "DIL: dilated stage4/5 (output stride 8).",
    "multi_level": "Multi-level feature concat(stage4, stage5, stage6).",
    "stage6": "The extra stage6 (§3.1: undoes dilation's gridding); off = plain ResNet.",
    "sac": "Self-attention constraint loss.",
}
REID_FLAGS = {
    "stage": "Training stage(s) to run.",
    "loss": "Identity/metric loss (Table 1).",
    "margin1": "Quadruplet margin m1.",
    "margin2": "Quadruplet margin m2.",
    "pad_crop": "Pad-10 + random-crop augmentation.",
    "random_erasing": "Random-erasing augmentation.",
    "color_jitter": "Camera colour jitter strength s in [0, 1): white balance, brightness, contrast and "
    "saturation each varied by up to ±s per image (0: off).",
    "eval_every": "Also evaluate every N epochs (0: only at the end of each stage).",
    "rerank": "Also report k-reciprocal re-ranked results (junk-free gallery).",
    "flip_eval": "Average embeddings of each image and its flip at evaluation.",
    "drop_bad_eval_images": "Leave undecodable query/gallery images out of the evaluation (counted in the summary) "
    "instead of stopping before training.",
}
# The strong baseline's options (BoT, Luo et al. 2019); `--recipe` sets them together, a given flag wins.
BASELINE_FLAGS = {
    "recipe": "paper: the paper's training; bot: the BoT strong baseline on plain ResNet50; sal_bot: SAL's network "
    "on that baseline (sal_tf/training/recipes.py). Other flags given explicitly win over the recipe.",
    "bnneck": "BNNeck: a BatchNorm after the embedding; metric losses before it, classifier and retrieval after it.",
    "last_stride": "Stride of conv5 without --dilation (BoT: 1).",
    "label_smoothing": "Label-smoothing ε of the softmax term (BoT: 0.1).",
    "triplet_margin": "Triplet margin (BoT: 0.3).",
    "triplet_soft_margin": "Soft-margin triplet, log(1 + exp(d_ap - d_an)), instead of the hinge.",
    "center_weight": "Center-loss weight, with the metric term (BoT: 0.0005; 0: off).",
    "center_lr": "SGD learning rate of the center-loss centres (their gradient is divided by --center_weight).",
    "single_stage": "Train every loss term in one stage with stage 1's schedule (BoT) instead of the paper's two.",
}
CIFAR_FLAGS = {
    "model_dir": "Output folder (checkpoints, TensorBoard, results.json).",
    "pad_crop": "Pad-4 + random 32×32 crop (random mirror is always on).",
    "width_divisor": "Divide every conv width by N (1 = ResNet; 8 for smoke runs).",
    "eval_every": "Also evaluate every N epochs (0: only at the end).",
    "eval_batch_size": "Evaluation batch size.",
    "max_eval_images": "Evaluate on the first N test images only (0: all 10,000).",
    "checkpoint_every_steps": "Checkpoint every N steps (and at each epoch end).",
}


def field_value(config, field):
    """The value of `field` in `config`: "margin1", or "stage1.epochs" for a stage's field."""
    for part in field.split("."):
        config = getattr(config, part)
    return config


def _choices(field):
    return CHOICES.get(field.rsplit(".", 1)[-1])


def define_field_flag(name, config, help, field=None, flag_values=FLAGS):
    """Defines `--name` for the config field `field` (default: `name`), its default the field's value in `config`.

    A field with `config.CHOICES` becomes an enum flag of those values (as strings); any other a
    boolean / integer / float / string flag by the type of its value.
    """
    value = field_value(config, field or name)
    choices = _choices(field or name)
    if choices is not None:
        return flags.DEFINE_enum(name, str(value), [str(c) for c in choices], help, flag_values=flag_values)
    return _DEFINE[type(value)](name, value, help, flag_values=flag_values)


def defaults_text(field, bases):
    """'default P; demo D' of a config field over `bases` ((label, config), ...); one value when all agree."""
    values = [(label, field_value(config, field)) for label, config in bases]
    if len({repr(v) for _, v in values}) == 1:
        return f"default {values[0][1]}"
    return "; ".join(f"{label} {value}" for label, value in values)


def define_data_dependent_flag(name, field, help, bases, flag_values=FLAGS, which=""):
    """Defines `--name` with default None (the base config's value applies), `help` saying the defaults of `bases`.

    `which`: what the defaults are of, when the flag sets more than `field` (e.g. "stage 1: ").
    """
    value = field_value(bases[0][1], field)
    text = f"{help} ({which}{defaults_text(field, bases)})."
    choices = _choices(field)
    if choices is not None:
        return flags.DEFINE_enum(name, None, [str(c) for c in choices], text, flag_values=flag_values)
    return _DEFINE[type(value)](name, None, text, flag_values=flag_values)


def reid_bases():
    """The configs a re-ID flag's default comes from: the paper's (with --data_dir) and the demo's."""
    return (("default", TrainConfig()), ("demo", TrainConfig.demo()))


def define_runtime_flags(config, flag_values=FLAGS):
    """Flags of how a run executes, shared by every trainer (re-ID, CIFAR-100, Table 1)."""
    for name, help in RUNTIME_FLAGS.items():
        define_field_flag(name, config, help, flag_values=flag_values)


def runtime_values(flag_values=FLAGS):
    """`TrainConfig` fields of the flags `define_runtime_flags` defines."""
    return {name: flag_values[name].value for name in RUNTIME_FLAGS}


def define_optimizer_flags(bases, flag_values=FLAGS):
    """Optimiser flags applied to every stage of a run; None: each stage's own value (the help says the defaults)."""
    field = lambda name: f"stage1.{name}"  # noqa: E731
    define_field_flag("optimizer", bases[0][1], "sgd: SGD with momentum (paper); adam: Adam (BoT), in every stage.",
                      field("optimizer"), flag_values)  # fmt: skip
    define_field_flag("lr_milestones", bases[0][1], "Comma-separated epochs at which the lr is multiplied by the "
                      "decay rate, in every stage (BoT: 40,70); replaces --lr_decay_epochs.", field("decay_milestones"),
                      flag_values)  # fmt: skip
    define_field_flag("warmup_start", bases[0][1], "The stage-1 warm-up starts at lr × this (BoT: 0.1); 0: the "
                      "ramp (step + 1) / warm-up steps.", field("warmup_start"), flag_values)  # fmt: skip
    define_data_dependent_flag("weight_decay", field("weight_decay"), "SGD weight decay wd, on every trainable "
                               "variable (conv/dense kernels, biases, BatchNorm γ/β), as torchreid", bases,
                               flag_values)  # fmt: skip
    define_field_flag("weight_decay_mode", bases[0][1], "coupled: PyTorch/Caffe L2, g += wd·w before momentum; "
                      "decoupled: Keras SGD(weight_decay), w -= lr·wd·w outside momentum (~10× weaker at momentum "
                      "0.9).", field("weight_decay_mode"), flag_values)  # fmt: skip
    define_data_dependent_flag("momentum", field("momentum"), "SGD momentum", bases, flag_values)
    decay = f"Multiply the lr by {field_value(bases[0][1], field('decay_rate'))} every N epochs, in every stage"
    define_data_dependent_flag("lr_decay_epochs", field("decay_every_epochs"), decay, bases, flag_values, "stage 1: ")
    define_data_dependent_flag("warmup_epochs", field("warmup_epochs"), "Linear lr warm-up epochs of stage 1", bases,
                               flag_values)  # fmt: skip


def define_model_flags(bases, follow_dilation=False, flag_values=FLAGS):
    """`--preset` (choices: `sal_tf.models.presets.PRESETS`) and the model switches of Table 1.

    `follow_dilation`: `--multi_level` / `--stage6` default to None, meaning "same as --dilation".
    """
    define_data_dependent_flag("preset", "preset", "Model preset", bases, flag_values)
    for name, help in MODEL_FLAGS.items():
        if follow_dilation and name in ("multi_level", "stage6"):
            flags.DEFINE_boolean(name, None, f"{help} Default: same as --dilation (the Soft rows are plain ResNets).",
                                 flag_values=flag_values)  # fmt: skip
        else:
            define_field_flag(name, bases[0][1], help, flag_values=flag_values)


# Re-ID flags whose default depends on the data (None: the paper's or the demo's value applies).
REID_DATA_DEPENDENT_FLAGS = {  # flag → (config field, help)
    "backbone_weights": ("backbone_weights", "imagenet | PATH to a Keras ResNet .h5 | none"),
    "stage1_epochs": ("stage1.epochs", "Stage-1 epochs"),
    "stage2_epochs": ("stage2.epochs", "Stage-2 epochs"),
    "stage1_lr": ("stage1.learning_rate", "Stage-1 learning rate"),
    "stage2_lr": ("stage2.learning_rate", "Stage-2 learning rate"),
    "batch_size": ("stage1.batch_size", "Stage-1 batch size"),
    "num_ids": ("stage2.num_ids", "Stage-2 identities per batch P"),
    "eval_untrained": ("eval_untrained", "Evaluate the initial model first"),
    "checkpoint_every_steps": ("checkpoint_every_steps", "Checkpoint every N steps (and at each epoch end)"),
}


def define_reid_flags(default_dataset, flag_values=FLAGS):
    """Flags of `trainers.market` / `trainers.duke` (and the Table 1 runner)."""
    demo = reid_bases()[1][1]
    flags.DEFINE_string("data_dir", None, "Dataset root. Omit to train on the generated demo dataset.",
                        flag_values=flag_values)  # fmt: skip
    flags.DEFINE_enum("dataset", default_dataset, list(LAYOUTS),
                      "Layout of --data_dir (custom: train.csv/query.csv/gallery.csv).", flag_values=flag_values)  # fmt: skip
    flags.DEFINE_string("model_dir", None, "Output folder (checkpoints, TensorBoard, results.json). "
                        f"Default: {run_folder('<dataset>')} or {demo.model_dir}.", flag_values=flag_values)  # fmt: skip
    flags.DEFINE_string("demo_cache_dir", None, "Where the demo dataset is generated "
                        "(default: $SAL_TF_CACHE or ~/.cache/sal_tf).", flag_values=flag_values)  # fmt: skip
    define_reid_training_flags(flag_values)


def define_reid_training_flags(flag_values=FLAGS):
    """The re-ID flags of how to train and evaluate (every re-ID flag but the data and output folders)."""
    bases = reid_bases()
    paper = bases[0][1]
    for name, help in {**REID_FLAGS, **BASELINE_FLAGS}.items():
        define_field_flag(name, paper, help, flag_values=flag_values)
    define_model_flags(bases, flag_values=flag_values)
    for name, (field, help) in REID_DATA_DEPENDENT_FLAGS.items():
        define_data_dependent_flag(name, field, help, bases, flag_values)
    define_field_flag("num_instances", paper, "Stage-2 images per identity K.", "stage2.num_instances", flag_values)
    define_optimizer_flags(bases, flag_values)
    define_runtime_flags(paper, flag_values)
    flags.DEFINE_integer("seeds", 1, "Train N seeds (--seed, --seed + 1, ...) in <model_dir>/seed_<s>/ and report mean "
                         "± std (seeds_summary.md / .json); 1: one run in <model_dir>.", lower_bound=1,
                         flag_values=flag_values)  # fmt: skip


def _typed(config, field, value, flag=None):
    """A flag's value as the type of the config field it sets (enum flags hold strings: --depth=101 → 101)."""
    if value is None:
        return value
    if isinstance(field_value(config, field), list):  # --lr_milestones=40,70
        return [_epoch(v, flag or field) for v in value]
    return type(field_value(config, field))(value)


def _epoch(text, flag):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--{flag}: expected comma-separated whole epochs. Received: {text!r}") from None


def _explicit(flag_values, config, **names):
    """{config field: flag value} of the flags given on the command line (field → flag); the others keep
    `config`'s value (a recipe's, or the default the flag shows)."""
    given = {field: flag for field, flag in names.items() if not flag_values[flag].using_default_value}
    return {field: _typed(config, field, flag_values[flag].value, flag) for field, flag in given.items()}


def _flag_fields(flag_values, config, names):
    """{name: value} of the given flags named like their config field."""
    return _explicit(flag_values, config, **{name: name for name in names})


def _given(flag_values, config, **names):
    """{config field: flag value} of the flags that were given (not None)."""
    values = {field: flag_values[flag].value for field, flag in names.items()}
    return {field: _typed(config, field, value) for field, value in values.items() if value is not None}


def _stage_changes(flag_values, base, explicit=None, **names):
    """`base` (a `StageConfig`) with the optimizer flags and the stage's own flags `names` (field → flag)."""
    common = dict(weight_decay="weight_decay", momentum="momentum", decay_every_epochs="lr_decay_epochs")
    named = dict(weight_decay_mode="weight_decay_mode", optimizer="optimizer", decay_milestones="lr_milestones")
    given = _explicit(flag_values, base, **named, **(explicit or {}))
    return dataclasses.replace(base, **_given(flag_values, base, **common, **names), **given)


def _data_dir(flag_values):
    return os.path.abspath(flag_values["data_dir"].value) if flag_values["data_dir"].value else ""


def reid_config_from_flags(flag_values=FLAGS):
    """The `TrainConfig` of the parsed re-ID trainer flags."""
    fv = flag_values
    demo = not fv["data_dir"].value
    dataset = "demo" if demo else dataset_name(fv["dataset"].value)
    base = TrainConfig.demo() if demo else TrainConfig()
    return dataclasses.replace(
        training_config_from_flags(fv, base),
        model_dir=fv["model_dir"].value or run_folder(dataset),
        dataset=dataset,
        data_dir=_data_dir(fv),
    )


def training_config_from_flags(flag_values, base):
    """`base` (a `TrainConfig`) with `--recipe` applied, then every training flag given explicitly."""
    fv = flag_values
    base = apply_recipe(base, fv["recipe"].value)
    stage1 = _stage_changes(fv, base.stage1, dict(warmup_start="warmup_start"), epochs="stage1_epochs",
                            learning_rate="stage1_lr", batch_size="batch_size", warmup_epochs="warmup_epochs")  # fmt: skip
    stage2 = _stage_changes(fv, base.stage2, epochs="stage2_epochs", learning_rate="stage2_lr")
    num_instances = fv["num_instances"].value
    num_ids = fv["num_ids"].value or base.stage2.num_ids
    stage2 = dataclasses.replace(stage2, num_instances=num_instances, batch_size=num_ids * num_instances)
    return dataclasses.replace(
        base,
        stage1=stage1,
        stage2=stage2,
        **_flag_fields(fv, base, (*REID_FLAGS, *MODEL_FLAGS, *BASELINE_FLAGS)),
        **_given(
            fv,
            base,
            **{name: name for name in ("preset", "backbone_weights", "eval_untrained", "checkpoint_every_steps")},
        ),  # fmt: skip
        **runtime_values(fv),
    )


def define_paper_flags(flag_values=FLAGS):
    """Flags of `trainers.paper`: where Market-1501 / DukeMTMC-reID are, and every re-ID training flag."""
    from sal_tf.experiments.paper_tables import DATASET_IDS, PAPER_TABLES

    names = " or ".join(f"{PAPER_TABLES[d][3][0]}/" for d in DATASET_IDS)
    flags.DEFINE_string("data_root", None, f"Folder holding the datasets under their usual names ({names}, ...).",
                        flag_values=flag_values)  # fmt: skip
    flags.DEFINE_string("market_dir", None, "Market-1501 folder (default: found under --data_root).",
                        flag_values=flag_values)  # fmt: skip
    flags.DEFINE_string("duke_dir", None, "DukeMTMC-reID folder (default: found under --data_root).",
                        flag_values=flag_values)  # fmt: skip
    flags.DEFINE_list(
        "datasets", list(DATASET_IDS), "Datasets to train and tabulate, in order.", flag_values=flag_values
    )
    flags.DEFINE_string("model_dir", run_folder("paper"), "Output folder: <model_dir>/<dataset>/ per dataset and "
                        "paper_tables.md / .json.", flag_values=flag_values)  # fmt: skip
    define_reid_training_flags(flag_values)


def paper_config_from_flags(flag_values=FLAGS):
    """(the `TrainConfig` every dataset trains with, {dataset: folder}) of the parsed `trainers.paper` flags."""
    from sal_tf.experiments.paper_tables import find_dataset, parse_datasets

    fv = flag_values
    datasets = parse_datasets(",".join(fv["datasets"].value))
    overrides = {"market1501": fv["market_dir"].value, "dukemtmc": fv["duke_dir"].value}
    if not fv["data_root"].value and not all(overrides[d] for d in datasets):
        raise ValueError("--data_root is required (the folder holding Market-1501 and DukeMTMC-reID), or "
                         "--market_dir / --duke_dir for each of --datasets.")  # fmt: skip
    data_dirs = {d: find_dataset(d, fv["data_root"].value, overrides[d]) for d in datasets}
    return training_config_from_flags(fv, TrainConfig(model_dir=fv["model_dir"].value)), data_dirs


def define_cifar_flags(flag_values=FLAGS):
    """Flags of `trainers.cifar100` (Table 4)."""
    base = CifarTrainConfig()
    bases = (("default", base),)
    flags.DEFINE_string("data_dir", None, "Extracted cifar-100-python folder (train, test, meta pickles). "
                        "Default: the keras.datasets.cifar100 cache, if it is there (never downloads).",
                        flag_values=flag_values)  # fmt: skip
    for name, help in CIFAR_FLAGS.items():
        define_field_flag(name, base, help, flag_values=flag_values)
    define_model_flags(bases, follow_dilation=True, flag_values=flag_values)
    define_field_flag("epochs", base, "Training epochs.", "stage1.epochs", flag_values)
    define_field_flag("lr", base, "Initial SGD learning rate.", "stage1.learning_rate", flag_values)
    define_field_flag("batch_size", base, "Global batch size.", "stage1.batch_size", flag_values)
    define_optimizer_flags(bases, flag_values)
    define_runtime_flags(base, flag_values)


def cifar_config_from_flags(flag_values=FLAGS):
    """The `CifarTrainConfig` of the parsed flags."""
    fv = flag_values
    base = CifarTrainConfig()
    stage1 = _stage_changes(fv, base.stage1, dict(warmup_start="warmup_start"), epochs="epochs", learning_rate="lr",
                            batch_size="batch_size", warmup_epochs="warmup_epochs")  # fmt: skip
    dilation = fv["dilation"].value
    follow = lambda name: dilation if fv[name].value is None else fv[name].value  # noqa: E731
    return dataclasses.replace(
        base,
        data_dir=_data_dir(fv),
        multi_level=follow("multi_level"),
        stage6=follow("stage6"),
        stage1=stage1,
        **_flag_fields(fv, base, (*CIFAR_FLAGS, "depth", "dilation", "sac")),
        **_given(fv, base, preset="preset"),
        **runtime_values(fv),
    )


def define_ablation_flags(flag_values=FLAGS):
    """The re-ID trainer's flags plus `--settings` (Table 1 rows)."""
    from sal_tf.experiments.table1 import SETTING_IDS

    define_reid_flags(default_dataset=TrainConfig.dataset, flag_values=flag_values)
    flags.DEFINE_string("settings", "all", f"Comma-separated Table 1 settings to run, of {','.join(SETTING_IDS)} "
                        "(or all). --loss/--dilation/--multi_level/--stage6/--sac are set per setting.",
                        flag_values=flag_values)  # fmt: skip


def ablation_config_from_flags(flag_values=FLAGS):
    """The base `TrainConfig` of the Table 1 runner (each setting's switches are applied later).

    On the demo data, each setting trains `table1.ABLATION_DEMO_EPOCHS` (the stage-1 warm-up and lr
    decay scaled alike) unless the epoch flags are given, and skips the untrained evaluation.
    """
    from sal_tf.experiments.table1 import ABLATION_DEMO_EPOCHS

    fv = flag_values
    if fv["recipe"].value != "paper":
        raise ValueError(f"--recipe={fv['recipe'].value}: the Table 1 runner takes each row's recipe from the row "
                         "(rows B and SB: the bot and sal_bot recipes); run them with --settings=B,SB.")  # fmt: skip
    base = reid_config_from_flags(fv)
    changes = {}
    if not fv["model_dir"].value:
        changes["model_dir"] = run_folder(f"ablation_{base.dataset}")
    if base.dataset == "demo":
        s1, s2 = base.stage1, base.stage2
        if fv["stage1_epochs"].value is None:
            scale = ABLATION_DEMO_EPOCHS["stage1"] / max(1, s1.epochs)
            s1 = dataclasses.replace(s1, epochs=ABLATION_DEMO_EPOCHS["stage1"])
            if fv["lr_decay_epochs"].value is None:
                s1 = dataclasses.replace(s1, decay_every_epochs=max(1, round(s1.decay_every_epochs * scale)))
            if fv["warmup_epochs"].value is None:
                s1 = dataclasses.replace(s1, warmup_epochs=round(s1.warmup_epochs * scale))
        if fv["stage2_epochs"].value is None:
            s2 = dataclasses.replace(s2, epochs=ABLATION_DEMO_EPOCHS["stage2"])
        changes.update(stage1=s1, stage2=s2)
        if fv["eval_untrained"].value is None:
            changes["eval_untrained"] = False
    return dataclasses.replace(base, **changes)

"""absl flags of the trainers and their translation into configs (flags → config; nothing else).

Defaults come from the configs (`sal_tf.training.config`): with `--data_dir` the paper's values
(`TrainConfig()`), without it the synthetic demo's (`TrainConfig.demo()`); a flag given explicitly
wins. Flags whose default depends on the data are defined with `None` and say both values in `--help`.
"""

import dataclasses
import os

from absl import flags

from sal_tf.training.config import (
    CIFAR_STAGE1,
    LOSSES,
    STRATEGIES,
    WEIGHT_DECAY_MODES,
    CifarTrainConfig,
    TrainConfig,
)

FLAGS = flags.FLAGS
DATASET_ALIASES = {"market1501": "market1501", "market": "market1501", "dukemtmc": "dukemtmc", "duke": "dukemtmc",
                   "custom": "custom"}  # fmt: skip
RUNTIME_FLAGS = ("strategy", "mixed_precision", "jit_compile", "seed", "deterministic", "log_every_steps",
                 "max_steps_per_epoch", "verbose")  # fmt: skip

_PAPER, _DEMO = TrainConfig(), TrainConfig.demo()


def _both(field, stage=None):
    """'default P; demo D' of a config field, for --help."""
    get = (lambda c: getattr(getattr(c, stage), field)) if stage else (lambda c: getattr(c, field))
    return f"default {get(_PAPER)}; demo {get(_DEMO)}"


def define_runtime_flags():
    """Flags of how a run executes, shared by every trainer (re-ID, CIFAR-100, Table 1)."""
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "tf.distribute strategy (multi_worker reads TF_CONFIG).")
    flags.DEFINE_boolean("mixed_precision", False, "mixed_float16 compute.")
    flags.DEFINE_boolean("jit_compile", False, "XLA-compile the train step (slower on CPU).")
    flags.DEFINE_integer("seed", 0, "Random seed (init, sampling, augmentation).")
    flags.DEFINE_boolean("deterministic", False, "Deterministic ops (reproducible resume).")
    flags.DEFINE_integer("log_every_steps", 10, "TensorBoard scalar interval in steps.")
    flags.DEFINE_integer("max_steps_per_epoch", 0, "Cap on steps per epoch (0: full epochs); for smoke runs.")
    flags.DEFINE_integer("verbose", 1, "0: quiet, 1: progress and tables, 2: also TensorFlow's native start-up logs.")


def runtime_values():
    """`TrainConfig` fields of the flags `define_runtime_flags` defines."""
    return {name: FLAGS[name].value for name in RUNTIME_FLAGS}


def define_optimizer_flags(stage1_help, weight_decay_default=None):
    flags.DEFINE_float("weight_decay", weight_decay_default, "SGD weight decay wd (default 5e-4), on every trainable "
                       "variable (conv/dense kernels, biases, BatchNorm γ/β), as torchreid.")  # fmt: skip
    flags.DEFINE_enum("weight_decay_mode", "coupled", list(WEIGHT_DECAY_MODES),
                      "coupled: PyTorch/Caffe L2, g += wd·w before momentum (the field's 5e-4); decoupled: Keras "
                      "SGD(weight_decay), w -= lr·wd·w outside momentum (~10× weaker at momentum 0.9).")  # fmt: skip
    flags.DEFINE_float("momentum", None, "SGD momentum (default 0.9).")
    flags.DEFINE_integer("lr_decay_epochs", None, f"Multiply the lr by 0.1 every N epochs ({stage1_help}).")
    flags.DEFINE_integer("warmup_epochs", None, "Linear lr warm-up epochs of stage 1 (default 0; demo 3).")


def define_model_flags():
    flags.DEFINE_enum("preset", None, ["paper", "tiny", "cifar"], "Model preset (default: paper; tiny for the demo).")
    flags.DEFINE_enum("depth", "50", ["50", "101"], "ResNet depth of the backbone.")
    flags.DEFINE_boolean("dilation", True, "DIL: dilated stage4/5 (output stride 8).")
    flags.DEFINE_boolean("multi_level", True, "Multi-level feature concat(stage4, stage5, stage6).")
    flags.DEFINE_boolean("stage6", True, "The extra stage6 (§3.1: undoes dilation's gridding); off = plain ResNet.")
    flags.DEFINE_boolean("sac", True, "Self-attention constraint loss.")


def define_reid_flags(default_dataset):
    """Flags of `trainers.market` / `trainers.duke` (and the Table 1 runner)."""
    flags.DEFINE_string("data_dir", None, "Dataset root. Omit to train on the generated demo dataset.")
    flags.DEFINE_enum("dataset", default_dataset, sorted(DATASET_ALIASES),
                      "Layout of --data_dir (custom: train.csv/query.csv/gallery.csv).")  # fmt: skip
    flags.DEFINE_string("model_dir", None, "Output folder (checkpoints, TensorBoard, results.json). "
                        "Default: runs/<dataset> or runs/demo.")  # fmt: skip
    flags.DEFINE_string("demo_cache_dir", None, "Where the demo dataset is generated "
                        "(default: $SAL_TF_CACHE or ~/.cache/sal_tf).")  # fmt: skip
    flags.DEFINE_enum("stage", "all", ["1", "2", "all"], "Training stage(s) to run.")
    define_model_flags()
    flags.DEFINE_enum("loss", "softmax+quadruplet", list(LOSSES), "Identity/metric loss (Table 1).")
    flags.DEFINE_string("backbone_weights", None, "imagenet | PATH to a Keras ResNet .h5 | none "
                        f"({_both('backbone_weights')}).")  # fmt: skip
    flags.DEFINE_integer("stage1_epochs", None, f"Stage-1 epochs ({_both('epochs', 'stage1')}).")
    flags.DEFINE_integer("stage2_epochs", None, f"Stage-2 epochs ({_both('epochs', 'stage2')}).")
    flags.DEFINE_float("stage1_lr", None, f"Stage-1 learning rate ({_both('learning_rate', 'stage1')}).")
    flags.DEFINE_float("stage2_lr", None, f"Stage-2 learning rate ({_both('learning_rate', 'stage2')}).")
    define_optimizer_flags("default 50; demo stage 1: 18")
    flags.DEFINE_integer("batch_size", None, f"Stage-1 batch size ({_both('batch_size', 'stage1')}).")
    flags.DEFINE_integer("num_ids", None, f"Stage-2 identities per batch P ({_both('num_ids', 'stage2')}).")
    flags.DEFINE_integer("num_instances", 4, "Stage-2 images per identity K.")
    flags.DEFINE_float("margin1", 0.5, "Quadruplet margin m1.")
    flags.DEFINE_float("margin2", 0.2, "Quadruplet margin m2.")
    flags.DEFINE_boolean("pad_crop", True, "Pad-10 + random-crop augmentation.")
    flags.DEFINE_boolean("random_erasing", False, "Random-erasing augmentation.")
    define_runtime_flags()
    flags.DEFINE_integer("eval_every", 0, "Also evaluate every N epochs (0: only at the end of each stage).")
    flags.DEFINE_boolean("eval_untrained", None, "Evaluate the initial model first (default: on for the demo).")
    flags.DEFINE_boolean("rerank", True, "Also report k-reciprocal re-ranked results (junk-free gallery).")
    flags.DEFINE_boolean("flip_eval", False, "Average embeddings of each image and its flip at evaluation.")
    flags.DEFINE_boolean("drop_bad_eval_images", False, "Leave undecodable query/gallery images out of the "
                         "evaluation (counted in the summary) instead of stopping before training.")  # fmt: skip
    flags.DEFINE_integer("checkpoint_every_steps", None, "Checkpoint every N steps (and at each epoch end; "
                         f"{_both('checkpoint_every_steps')}).")  # fmt: skip


def _given(**names):
    """{config field: flag value} of the flags that were given (not None)."""
    return {field: FLAGS[flag].value for field, flag in names.items() if FLAGS[flag].value is not None}


def _same(*names):
    """{name: flag value} of flags named like their config field."""
    return {name: FLAGS[name].value for name in names}


def _stage_changes(base, **names):
    common = _given(weight_decay="weight_decay", momentum="momentum", decay_every_epochs="lr_decay_epochs")
    return dataclasses.replace(base, weight_decay_mode=FLAGS.weight_decay_mode, **common, **_given(**names))


def reid_config_from_flags():
    """The `TrainConfig` of the parsed re-ID trainer flags."""
    demo = not FLAGS.data_dir
    dataset = "demo" if demo else DATASET_ALIASES[FLAGS.dataset]
    base = TrainConfig.demo() if demo else TrainConfig()
    stage1 = _stage_changes(base.stage1, epochs="stage1_epochs", learning_rate="stage1_lr",
                            batch_size="batch_size", warmup_epochs="warmup_epochs")  # fmt: skip
    stage2 = _stage_changes(base.stage2, epochs="stage2_epochs", learning_rate="stage2_lr")
    stage2 = dataclasses.replace(stage2, num_instances=FLAGS.num_instances,
                                 batch_size=(FLAGS.num_ids or base.stage2.num_ids) * FLAGS.num_instances)  # fmt: skip
    return dataclasses.replace(
        base,
        model_dir=FLAGS.model_dir or os.path.join("runs", dataset),
        dataset=dataset,
        data_dir=os.path.abspath(FLAGS.data_dir) if FLAGS.data_dir else "",
        depth=int(FLAGS.depth),
        stage1=stage1,
        stage2=stage2,
        **_same(
            "dilation",
            "multi_level",
            "stage6",
            "sac",
            "loss",
            "stage",
            "margin1",
            "margin2",
            "pad_crop",
            "random_erasing",
            "eval_every",
            "rerank",
            "flip_eval",
            "drop_bad_eval_images",
        ),  # fmt: skip
        **_given(
            preset="preset",
            backbone_weights="backbone_weights",
            eval_untrained="eval_untrained",
            checkpoint_every_steps="checkpoint_every_steps",
        ),  # fmt: skip
        **runtime_values(),
    )


def define_cifar_flags():
    """Flags of `trainers.cifar100` (Table 4)."""
    flags.DEFINE_string("data_dir", None, "Extracted cifar-100-python folder (train, test, meta pickles). "
                        "Default: the keras.datasets.cifar100 cache, if it is there (never downloads).")  # fmt: skip
    flags.DEFINE_string("model_dir", "runs/cifar100", "Output folder (checkpoints, TensorBoard, results.json).")
    define_model_flags()
    FLAGS.set_default("multi_level", None)
    FLAGS["multi_level"].help = "Multi-level feature (default: same as --dilation, as in Table 1)."
    FLAGS.set_default("stage6", None)
    FLAGS["stage6"].help = "The extra stage6 (default: same as --dilation: the Soft rows are plain ResNets)."
    flags.DEFINE_integer("epochs", CIFAR_STAGE1["epochs"], "Training epochs.")
    flags.DEFINE_float("lr", CIFAR_STAGE1["learning_rate"], "Initial SGD learning rate.")
    define_optimizer_flags(f"default {CIFAR_STAGE1['decay_every_epochs']}", CIFAR_STAGE1["weight_decay"])
    flags.DEFINE_integer("batch_size", CIFAR_STAGE1["batch_size"], "Global batch size.")
    flags.DEFINE_boolean("pad_crop", True, "Pad-4 + random 32×32 crop (random mirror is always on).")
    flags.DEFINE_integer("width_divisor", 1, "Divide every conv width by N (1 = ResNet; 8 for smoke runs).")
    define_runtime_flags()
    flags.DEFINE_integer("eval_every", 10, "Also evaluate every N epochs (0: only at the end).")
    flags.DEFINE_integer("eval_batch_size", 256, "Evaluation batch size.")
    flags.DEFINE_integer("max_eval_images", 0, "Evaluate on the first N test images only (0: all 10,000).")
    flags.DEFINE_integer("checkpoint_every_steps", 500, "Checkpoint every N steps (and at each epoch end).")


def cifar_config_from_flags():
    """The `CifarTrainConfig` of the parsed flags."""
    base = CifarTrainConfig()
    stage1 = _stage_changes(base.stage1, epochs="epochs", learning_rate="lr", batch_size="batch_size",
                            warmup_epochs="warmup_epochs")  # fmt: skip
    follow = lambda name: FLAGS.dilation if FLAGS[name].value is None else FLAGS[name].value  # noqa: E731
    return CifarTrainConfig(
        model_dir=FLAGS.model_dir,
        data_dir=os.path.abspath(FLAGS.data_dir) if FLAGS.data_dir else "",
        depth=int(FLAGS.depth),
        multi_level=follow("multi_level"),
        stage6=follow("stage6"),
        stage1=stage1,
        **_same(
            "dilation",
            "sac",
            "pad_crop",
            "width_divisor",
            "eval_every",
            "eval_batch_size",
            "max_eval_images",
            "checkpoint_every_steps",
        ),  # fmt: skip
        **_given(preset="preset"),
        **runtime_values(),
    )


# The Table 1 runner on the demo data (no --data_dir): half of the single demo run's epochs per
# setting (stage 1: 12, stage 2: 5; the stage-1 warm-up and lr-decay epochs scale alike), no
# untrained evaluation. The 9 settings then take ~15 minutes on 2 CPU cores. Explicit flags win.
ABLATION_DEMO_EPOCHS = dict(stage1=12, stage2=5)


def define_ablation_flags():
    """The re-ID trainer's flags plus `--settings` (Table 1 rows)."""
    from sal_tf.training.table1 import SETTING_IDS

    define_reid_flags(default_dataset="market1501")
    flags.DEFINE_string("settings", "all", f"Comma-separated Table 1 settings to run, of {','.join(SETTING_IDS)} "
                        "(or all). --loss/--dilation/--multi_level/--stage6/--sac are set per setting.")  # fmt: skip


def ablation_config_from_flags():
    """The base `TrainConfig` of the Table 1 runner (each setting's switches are applied later)."""
    base = reid_config_from_flags()
    changes = {}
    if not FLAGS.model_dir:
        changes["model_dir"] = os.path.join("runs", f"ablation_{base.dataset}")
    if base.dataset == "demo":
        s1, s2 = base.stage1, base.stage2
        if FLAGS.stage1_epochs is None:
            scale = ABLATION_DEMO_EPOCHS["stage1"] / max(1, s1.epochs)
            s1 = dataclasses.replace(s1, epochs=ABLATION_DEMO_EPOCHS["stage1"])
            if FLAGS.lr_decay_epochs is None:
                s1 = dataclasses.replace(s1, decay_every_epochs=max(1, round(s1.decay_every_epochs * scale)))
            if FLAGS.warmup_epochs is None:
                s1 = dataclasses.replace(s1, warmup_epochs=round(s1.warmup_epochs * scale))
        if FLAGS.stage2_epochs is None:
            s2 = dataclasses.replace(s2, epochs=ABLATION_DEMO_EPOCHS["stage2"])
        changes.update(stage1=s1, stage2=s2)
        if FLAGS.eval_untrained is None:
            changes["eval_untrained"] = False
    return dataclasses.replace(base, **changes)

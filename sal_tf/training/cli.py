"""absl flags shared by `trainers.market` / `trainers.duke`, and the entry logic.

Defaults depend on the data: with `--data_dir` the `paper` preset and the paper's
values (§4.1) apply; with no `--data_dir` the trainer writes the synthetic demo
dataset once into a cache folder and trains the `tiny` preset with demo values
that finish in a few minutes on 2 CPU cores. Any flag given explicitly wins.
"""

import os
import sys

from absl import flags

from sal_tf.training.config import LOSSES, STRATEGIES, StageConfig, TrainConfig

FLAGS = flags.FLAGS

# Demo defaults: the `tiny` preset from scratch on the synthetic dataset.
DEMO = dict(
    preset="tiny",
    backbone_weights="none",
    stage1=dict(epochs=24, learning_rate=0.05, warmup_epochs=3, decay_every_epochs=18, batch_size=64),
    stage2=dict(epochs=10, learning_rate=1e-3, decay_every_epochs=50, num_ids=16, num_instances=4),
    eval_untrained=True,
    checkpoint_every_steps=100,
)
# Paper defaults (§4.1); epoch counts are ours (the paper gives none).
PAPER = dict(
    preset="paper",
    backbone_weights="imagenet",
    stage1=dict(epochs=120, learning_rate=0.1, decay_every_epochs=50, batch_size=128),
    stage2=dict(epochs=60, learning_rate=1e-4, decay_every_epochs=50, num_ids=18, num_instances=4),
    eval_untrained=False,
    checkpoint_every_steps=500,
)


def define_runtime_flags():
    """Flags of how a run executes, shared by every trainer (re-ID and CIFAR-100)."""
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "tf.distribute strategy (multi_worker reads TF_CONFIG).")
    flags.DEFINE_boolean("mixed_precision", False, "mixed_float16 compute.")
    flags.DEFINE_boolean("jit_compile", False, "XLA-compile the train step (slower on CPU).")
    flags.DEFINE_integer("seed", 0, "Random seed (init, sampling, augmentation).")
    flags.DEFINE_boolean("deterministic", False, "Deterministic ops (reproducible resume).")
    flags.DEFINE_integer("log_every_steps", 10, "TensorBoard scalar interval in steps.")
    flags.DEFINE_integer("max_steps_per_epoch", 0, "Cap on steps per epoch (0: full epochs); for smoke runs.")


def runtime_flag_values():
    """`TrainConfig` fields of the flags that `define_runtime_flags` defines."""
    names = (
        "strategy",
        "mixed_precision",
        "jit_compile",
        "seed",
        "deterministic",
        "log_every_steps",
        "max_steps_per_epoch",
    )
    return {name: FLAGS[name].value for name in names}


def define_flags(default_dataset):
    flags.DEFINE_string("data_dir", None, "Dataset root. Omit to train on the generated demo dataset.")
    flags.DEFINE_enum(
        "dataset",
        default_dataset,
        ["market1501", "dukemtmc", "custom"],
        "Layout of --data_dir (custom: train.csv/query.csv/gallery.csv).",
    )
    flags.DEFINE_string(
        "model_dir",
        None,
        "Output folder (checkpoints, TensorBoard, results.json). Default: runs/<dataset> or runs/demo.",
    )
    flags.DEFINE_string(
        "demo_cache_dir", None, "Where the demo dataset is generated (default: $SAL_TF_CACHE or ~/.cache/sal_tf)."
    )
    flags.DEFINE_enum("stage", "all", ["1", "2", "all"], "Training stage(s) to run.")
    flags.DEFINE_enum("preset", None, ["paper", "tiny", "cifar"], "Model preset (default: paper, tiny for the demo).")
    flags.DEFINE_boolean("dilation", True, "DIL: dilated stage4/5 (output stride 8).")
    flags.DEFINE_boolean("multi_level", True, "Multi-level feature concat(stage4, stage5, stage6).")
    flags.DEFINE_boolean("sac", True, "Self-attention constraint loss.")
    flags.DEFINE_enum("loss", "softmax+quadruplet", list(LOSSES), "Identity/metric loss (Table 1).")
    flags.DEFINE_string(
        "backbone_weights",
        None,
        "imagenet | PATH to a Keras ResNet50 .h5 | none (default: imagenet; none for the demo).",
    )
    flags.DEFINE_integer("stage1_epochs", None, "Stage-1 epochs (default 120; demo 24).")
    flags.DEFINE_integer("stage2_epochs", None, "Stage-2 epochs (default 60; demo 10).")
    flags.DEFINE_float("stage1_lr", None, "Stage-1 learning rate (default 0.1; demo 0.05 with a 3-epoch warm-up).")
    flags.DEFINE_float("stage2_lr", None, "Stage-2 learning rate (default 1e-4; demo 1e-3).")
    flags.DEFINE_integer(
        "lr_decay_epochs", None, "Multiply the lr by 0.1 every N epochs (default 50; demo stage 1: 18)."
    )
    flags.DEFINE_integer("warmup_epochs", None, "Linear lr warm-up epochs of stage 1 (default 0; demo 3).")
    flags.DEFINE_float("weight_decay", 5e-4, "SGD weight decay.")
    flags.DEFINE_integer("batch_size", None, "Stage-1 batch size (default 128; demo 64).")
    flags.DEFINE_integer("num_ids", None, "Stage-2 identities per batch P (default 18; demo 16).")
    flags.DEFINE_integer("num_instances", 4, "Stage-2 images per identity K.")
    flags.DEFINE_float("margin1", 0.5, "Quadruplet margin m1.")
    flags.DEFINE_float("margin2", 0.2, "Quadruplet margin m2.")
    flags.DEFINE_boolean("pad_crop", True, "Pad-10 + random-crop augmentation.")
    flags.DEFINE_boolean("random_erasing", False, "Random-erasing augmentation.")
    define_runtime_flags()
    flags.DEFINE_integer("eval_every", 0, "Also evaluate every N epochs (0: only at the end of each stage).")
    flags.DEFINE_boolean("eval_untrained", None, "Evaluate the initial model first (default: on for the demo).")
    flags.DEFINE_boolean("rerank", True, "Also report k-reciprocal re-ranked results.")
    flags.DEFINE_boolean("flip_eval", False, "Average embeddings of each image and its flip at evaluation.")
    flags.DEFINE_integer("checkpoint_every_steps", None, "Checkpoint every N steps (and at each epoch end).")
    flags.DEFINE_integer("verbose", 1, "0: quiet, 1: progress bars and tables.")


def config_from_flags():
    """Builds the `TrainConfig` from the parsed flags and the data-dependent defaults."""
    demo = not FLAGS.data_dir
    base = DEMO if demo else PAPER

    def pick(value, default):
        return default if value is None else value

    s1 = dict(base["stage1"])
    s2 = dict(base["stage2"])
    s1.update(
        epochs=pick(FLAGS.stage1_epochs, s1["epochs"]),
        learning_rate=pick(FLAGS.stage1_lr, s1["learning_rate"]),
        batch_size=pick(FLAGS.batch_size, s1["batch_size"]),
        weight_decay=FLAGS.weight_decay,
    )
    s2.update(
        epochs=pick(FLAGS.stage2_epochs, s2["epochs"]),
        learning_rate=pick(FLAGS.stage2_lr, s2["learning_rate"]),
        num_ids=pick(FLAGS.num_ids, s2["num_ids"]),
        num_instances=FLAGS.num_instances,
        weight_decay=FLAGS.weight_decay,
    )
    if FLAGS.warmup_epochs is not None:
        s1["warmup_epochs"] = FLAGS.warmup_epochs
    if FLAGS.lr_decay_epochs is not None:
        s1["decay_every_epochs"] = s2["decay_every_epochs"] = FLAGS.lr_decay_epochs
    dataset = "demo" if demo else FLAGS.dataset
    return TrainConfig(
        model_dir=FLAGS.model_dir or os.path.join("runs", "demo" if demo else FLAGS.dataset),
        dataset=dataset,
        data_dir=os.path.abspath(FLAGS.data_dir) if FLAGS.data_dir else "",
        preset=pick(FLAGS.preset, base["preset"]),
        dilation=FLAGS.dilation,
        multi_level=FLAGS.multi_level,
        sac=FLAGS.sac,
        loss=FLAGS.loss,
        backbone_weights=pick(FLAGS.backbone_weights, base["backbone_weights"]),
        stage=FLAGS.stage,
        stage1=StageConfig(**s1),
        stage2=StageConfig(**s2),
        margin1=FLAGS.margin1,
        margin2=FLAGS.margin2,
        pad_crop=FLAGS.pad_crop,
        random_erasing=FLAGS.random_erasing,
        eval_every=FLAGS.eval_every,
        eval_untrained=pick(FLAGS.eval_untrained, base["eval_untrained"]),
        rerank=FLAGS.rerank,
        flip_eval=FLAGS.flip_eval,
        checkpoint_every_steps=pick(FLAGS.checkpoint_every_steps, base["checkpoint_every_steps"]),
        verbose=FLAGS.verbose,
        **runtime_flag_values(),
    )


def demo_cache_dir():
    return (
        FLAGS.demo_cache_dir
        or os.environ.get("SAL_TF_CACHE")
        or os.path.join(os.path.expanduser("~"), ".cache", "sal_tf")
    )


def load_data(config, verbose=True):
    """The `ReIDDataset` of a config (generating the demo dataset if needed)."""
    from sal_tf.data import load_dataset
    from sal_tf.data.demo import ensure_demo_dataset

    if config.dataset == "demo":
        cache = demo_cache_dir()
        root = ensure_demo_dataset(os.path.join(cache, "demo"), seed=0)
        if verbose:
            print(f"No --data_dir given: using the demo dataset at {root}")
        return load_dataset("market1501", root, verbose=verbose)
    return load_dataset(config.dataset, config.data_dir, verbose=verbose)


def run(argv):
    """Entry used by the thin trainers: parse → data → train → report."""
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    from sal_tf.training.reid_eval import format_results
    from sal_tf.training.trainer import ConfigMismatch, ReIDTrainer, TrainingDiverged

    try:
        config = config_from_flags()
        data = load_data(config, verbose=config.verbose > 0)
        trainer = ReIDTrainer(config, data)
        results = trainer.run()
    except (ConfigMismatch, FileNotFoundError, ValueError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2 if not isinstance(e, TrainingDiverged) else 3)
    if config.verbose and trainer.chief:
        print(f"\nResults ({trainer.results_path}):")
        for key in ("untrained", "stage1", "stage2"):
            if key in results:
                print(f"[{key}]\n{format_results(results[key])}")
        for key in ("stage1", "stage2"):
            if key in results and "train_seconds" in results[key]:
                print(f"{key} training time: {results[key]['train_seconds']:.0f} s")

"""CIFAR-100 classification with the SAL network (paper §4.5, Table 4).

`CifarTrainer` is a `ReIDTrainer` with other data hooks: the same loop, strategies,
checkpoints/resume, NaN stop and TensorBoard. The run is stage 1 with `loss="softmax"`
(+ SAC when `--sac`); evaluation is the top-1 **test error %** as Table 4 reports it:

    | Table 4 row                 | paper error % | flags                          |
    | ResNet50 (Soft)             | 22.02         | --nodilation --nosac           |
    | ResNet50 (Soft + DIL + SAC) | 21.75         | (defaults: --dilation --sac)   |

`--multi_level` follows `--dilation` unless given (Table 1 pairs DIL with the multi-level
feature). Our network always has the extra stage6 (SPEC §3), also in the "plain" row.

Optimisation defaults (the paper gives none for CIFAR; these are the usual CIFAR ResNet
recipe in the paper's schedule form): SGD momentum 0.9, lr 0.1, ×0.1 every 50 epochs,
150 epochs, batch 128, weight decay 5e-4, no ImageNet weights (the 3×3 stem does not fit
them). Augmentation: zero-pad 4 + random 32×32 crop + random mirror.
"""

import dataclasses
import os
import sys

import numpy as np
import tensorflow as tf
from absl import flags

from sal_tf.data import cifar100
from sal_tf.training import cli
from sal_tf.training.config import RUNTIME_FIELDS, StageConfig, TrainConfig
from sal_tf.training.trainer import ReIDTrainer

PAPER_ERROR = {"soft": 22.02, "soft+dil+sac": 21.75}
CIFAR_RUNTIME_FIELDS = RUNTIME_FIELDS + ("max_eval_images",)
CIFAR_STAGE1 = dict(epochs=150, learning_rate=0.1, decay_every_epochs=50, batch_size=128, weight_decay=5e-4)


@dataclasses.dataclass
class CifarTrainConfig(TrainConfig):
    """A `TrainConfig` for CIFAR-100: stage 1, softmax (+ SAC), `cifar` preset.

    Extra fields: `width_divisor` (model widths ÷ N, 1 = ResNet50; smoke runs use 8) and
    `max_eval_images` (0 = the whole test set; a runtime knob for smoke runs).
    """

    model_dir: str = "runs/cifar100"
    dataset: str = "cifar100"
    preset: str = "cifar"
    loss: str = "softmax"
    backbone_weights: str = "none"
    stage: str = "1"
    stage1: StageConfig = dataclasses.field(default_factory=lambda: StageConfig(**CIFAR_STAGE1))
    rerank: bool = False
    checkpoint_every_steps: int = 500
    eval_batch_size: int = 256
    width_divisor: int = 1
    max_eval_images: int = 0

    def validate(self):
        super().validate()
        if self.loss != "softmax" or str(self.stage) != "1":
            raise ValueError(
                f"CIFAR-100 trains stage 1 with loss=softmax (Table 4); got loss={self.loss!r}, stage={self.stage!r}."
            )
        if self.width_divisor < 1 or 64 % self.width_divisor:
            raise ValueError(f"--width_divisor must divide 64 (1, 2, 4, 8, ...). Received: {self.width_divisor}")
        if self.max_eval_images < 0:
            raise ValueError(f"--max_eval_images must be >= 0. Received: {self.max_eval_images}")

    @property
    def table4_row(self):
        return "ResNet50 (Soft" + (" + DIL" if self.dilation else "") + (" + SAC" if self.sac else "") + ")"

    def differences(self, other):
        return {k: v for k, v in super().differences(other).items() if k not in CIFAR_RUNTIME_FIELDS}


class CifarTrainer(ReIDTrainer):
    """Trains / evaluates the SAL classifier on a `Cifar100Data` with a `CifarTrainConfig`."""

    def __init__(self, config: CifarTrainConfig, dataset, strategy=None):
        super().__init__(config, dataset, strategy)
        # Tensors built once, shared by every epoch's pipeline.
        self._train_images = tf.constant(dataset.train_images)
        self._train_labels = tf.constant(dataset.train_labels)

    @property
    def num_classes(self):
        return cifar100.NUM_CLASSES

    def model_overrides(self):
        return dict(super().model_overrides(), width_divisor=self.cfg.width_divisor)

    def build_inputs(self, stage, epoch):
        return cifar100.build_train_dataset(
            self._train_images,
            self._train_labels,
            batch_size=self.cfg.stage1.batch_size,
            seed=self.cfg.seed,
            epoch=epoch,
            pad=4 if self.cfg.pad_crop else 0,
        )

    def steps_per_epoch(self, stage):
        n = len(self.data.train_labels)
        steps = cifar100.steps_per_epoch(n, self.cfg.stage1.batch_size)
        if steps < 1:
            raise ValueError(
                f"The training split ({n} images) is smaller than one batch "
                f"(--batch_size={self.cfg.stage1.batch_size})."
            )
        if self.cfg.max_steps_per_epoch:
            steps = min(steps, self.cfg.max_steps_per_epoch)
        return steps

    def _test_split(self):
        n = self.cfg.max_eval_images or len(self.data.test_labels)
        return self.data.test_images[:n], self.data.test_labels[:n]

    def evaluate(self, model, tag, step):
        """Top-1 / top-5 test error % (Table 4 reports top-1); prints it and logs TensorBoard."""
        images, labels = self._test_split()
        ds = cifar100.build_eval_dataset(images, labels, batch_size=self.cfg.eval_batch_size)
        logits_fn = tf.function(lambda x: model(x, training=False)["logits"])
        top1 = top5 = 0
        for x, y in ds:
            logits = logits_fn(x).numpy()
            y = y.numpy()
            top1 += int(np.sum(np.argmax(logits, axis=1) == y))
            top5 += int(np.sum(np.any(np.argsort(-logits, axis=1)[:, :5] == y[:, None], axis=1)))
        n = len(labels)
        res = {
            "error": 100.0 * (1 - top1 / n),
            "top5_error": 100.0 * (1 - top5 / n),
            "accuracy": top1 / n,
            "num_images": n,
        }
        if self.cfg.verbose and self.chief:
            print(
                f"Evaluation [{tag}] on CIFAR-100 test ({n} images): error {res['error']:.2f} % "
                f"(top-5 {res['top5_error']:.2f} %)"
            )
        writer = self._writer("eval")
        if writer:
            with writer.as_default(step=step):
                tf.summary.scalar(f"{tag.split('_')[0]}/error_percent", res["error"])
                tf.summary.scalar(f"{tag.split('_')[0]}/top5_error_percent", res["top5_error"])
        return res

    def attention_images(self, count):
        """The first `count` test images (float32 RGB) for the TensorBoard attention overlays."""
        return self.data.test_images[:count].astype(np.float32)

    def summarize(self, results):
        """Adds the Table 4 comparison to `results` (and results.json); returns it."""
        if "stage1" not in results:
            return results
        key = (
            "soft+dil+sac"
            if self.cfg.dilation and self.cfg.sac
            else "soft"
            if not self.cfg.dilation and not self.cfg.sac
            else None
        )
        results["table4"] = {
            "row": self.cfg.table4_row,
            "test_error_percent": results["stage1"]["error"],
            "paper_test_error_percent": PAPER_ERROR.get(key),
            "num_test_images": results["stage1"]["num_images"],
        }
        self._save_results(results)
        return results


# === Command line (trainers/cifar100.py) ===
FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string(
        "data_dir",
        None,
        "Extracted cifar-100-python folder (train, test, meta pickles). "
        "Default: the keras.datasets.cifar100 cache, if it is there (never downloads).",
    )
    flags.DEFINE_string("model_dir", "runs/cifar100", "Output folder (checkpoints, TensorBoard, results.json).")
    flags.DEFINE_boolean("dilation", True, "DIL: dilated stage4/5 (Table 4 'DIL'); --nodilation for plain ResNet50.")
    flags.DEFINE_boolean("sac", True, "Self-attention constraint (Table 4 'SAC').")
    flags.DEFINE_boolean("multi_level", None, "Multi-level feature (default: same as --dilation, as in Table 1).")
    flags.DEFINE_integer("epochs", CIFAR_STAGE1["epochs"], "Training epochs.")
    flags.DEFINE_float("lr", CIFAR_STAGE1["learning_rate"], "Initial SGD learning rate.")
    flags.DEFINE_integer(
        "lr_decay_epochs", CIFAR_STAGE1["decay_every_epochs"], "Multiply the lr by 0.1 every N epochs."
    )
    flags.DEFINE_integer("warmup_epochs", 0, "Linear lr warm-up epochs.")
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
    flags.DEFINE_float("weight_decay", CIFAR_STAGE1["weight_decay"], "SGD weight decay.")
    flags.DEFINE_integer("batch_size", CIFAR_STAGE1["batch_size"], "Global batch size.")
    flags.DEFINE_boolean("pad_crop", True, "Pad-4 + random 32×32 crop (random mirror is always on).")
    flags.DEFINE_integer("width_divisor", 1, "Divide every conv width by N (1 = ResNet50; 8 for smoke runs).")
    cli.define_runtime_flags()
    flags.DEFINE_integer("eval_every", 10, "Also evaluate every N epochs (0: only at the end).")
    flags.DEFINE_integer("eval_batch_size", 256, "Evaluation batch size.")
    flags.DEFINE_integer("max_eval_images", 0, "Evaluate on the first N test images only (0: all 10,000).")
    flags.DEFINE_integer("checkpoint_every_steps", 500, "Checkpoint every N steps (and at each epoch end).")
    flags.DEFINE_integer("verbose", 1, "0: quiet, 1: progress bars.")


def config_from_flags():
    """The `CifarTrainConfig` of the parsed flags."""
    stage1 = StageConfig(
        epochs=FLAGS.epochs,
        learning_rate=FLAGS.lr,
        decay_every_epochs=FLAGS.lr_decay_epochs,
        warmup_epochs=FLAGS.warmup_epochs,
        momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay,
        batch_size=FLAGS.batch_size,
    )
    return CifarTrainConfig(
        model_dir=FLAGS.model_dir,
        data_dir=os.path.abspath(FLAGS.data_dir) if FLAGS.data_dir else "",
        dilation=FLAGS.dilation,
        multi_level=FLAGS.dilation if FLAGS.multi_level is None else FLAGS.multi_level,
        sac=FLAGS.sac,
        stage1=stage1,
        pad_crop=FLAGS.pad_crop,
        width_divisor=FLAGS.width_divisor,
        eval_every=FLAGS.eval_every,
        eval_batch_size=FLAGS.eval_batch_size,
        max_eval_images=FLAGS.max_eval_images,
        checkpoint_every_steps=FLAGS.checkpoint_every_steps,
        verbose=FLAGS.verbose,
        **cli.runtime_flag_values(),
    )


def run(argv):
    """Entry of `python -m trainers.cifar100`: parse → data → train → report the test error.

    Exit status: 0 done, 2 bad flags/data/model_dir, 3 the loss diverged.
    """
    del argv
    from sal_tf.training.trainer import ConfigMismatch, TrainingDiverged

    try:
        config = config_from_flags()
        data = cifar100.load_cifar100(config.data_dir or None, verbose=config.verbose > 0)
        trainer = CifarTrainer(config, data)
        results = trainer.summarize(trainer.run())
    except (ConfigMismatch, FileNotFoundError, ValueError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2 if not isinstance(e, TrainingDiverged) else 3)
    if trainer.chief and "table4" in results:
        t = results["table4"]
        paper = f"{t['paper_test_error_percent']:.2f} %" if t["paper_test_error_percent"] is not None else "–"
        print(
            f"\n{t['row']}: test error {t['test_error_percent']:.2f} % on {t['num_test_images']} images "
            f"(paper: {paper}). Results: {trainer.results_path}"
        )
    # Return nothing: absl's app.run passes main's return value to sys.exit.

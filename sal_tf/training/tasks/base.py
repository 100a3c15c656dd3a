"""The task interface the experiment runner calls, and what every task shares (attention pictures)."""

import abc
from typing import NamedTuple

import tensorflow as tf

from sal_tf.evaluation.visualize import attention_figure
from sal_tf.losses import CenterLoss, SALObjective
from sal_tf.models import build_model, get_preset

NUM_ATTENTION_IMAGES = 6


class Evaluation(NamedTuple):
    """What `Task.evaluate` returns: the metrics stored in results.json, and pictures for TensorBoard."""

    results: dict
    pictures: dict | None = None  # name → uint8 [H, W, 3], logged as `<prefix>/<name>`


def backbone_weights_option(value):
    """`--backbone_weights` → `build_model(backbone_weights=...)`: "none"/"" mean random init."""
    return None if value in (None, "", "none", "None") else value


class Task(abc.ABC):
    """Base of `ReIDTask` / `CifarTask` (the hooks of TF Model Garden's `official/core/base_task.Task`).

    A subclass sets `data_name` and `num_classes` and implements the abstract hooks `build_inputs`,
    `steps_per_epoch`, `evaluate`, `format_results` and `log_results`; a task missing one cannot be
    instantiated. `build_model`, `build_losses`, `attention_images` and `write_pictures` have defaults.
    """

    data_name = ""
    num_classes = 0

    def __init__(self, config):
        self.cfg = config

    def build_model(self, pretrained=True, verbose=False):
        """The `SALModel` of the config (call inside the strategy scope); backbone weights when `pretrained`."""
        weights = backbone_weights_option(self.cfg.backbone_weights) if pretrained else None
        return build_model(
            self.cfg.preset, num_classes=self.num_classes, backbone_weights=weights, verbose=verbose,
            **self.cfg.model_options(),
        )  # fmt: skip

    def build_losses(self, stage):
        """The stage's objective (eq. 6 with the stage's terms; call inside the strategy scope).

        With a center-loss weight it holds a new `CenterLoss` (one centre per class, of the embedding's size).
        """
        losses = dict(stage.losses)
        if losses.get("center_weight"):
            dim = get_preset(self.cfg.preset)["embedding_dim"]
            losses["centers"] = CenterLoss(self.num_classes, dim, name="center_loss")
        return SALObjective(**losses)

    @abc.abstractmethod
    def build_inputs(self, stage, epoch, num_replicas=1):
        """The stage's global batches of one epoch: a `tf.data.Dataset` of (images, labels), seeded by epoch."""

    @abc.abstractmethod
    def steps_per_epoch(self, stage, num_replicas=1):
        """How many batches `build_inputs` yields per epoch."""

    @abc.abstractmethod
    def evaluate(self, model, tag, out_dir=None):
        """The task's `Evaluation` of `model`: its metrics dict and any pictures (e.g. rank lists)."""

    @abc.abstractmethod
    def format_results(self, res):
        """`evaluate`'s result as text for the console."""

    @abc.abstractmethod
    def log_results(self, prefix, res):
        """`evaluate`'s result as TensorBoard summaries under `prefix` (inside a writer's default scope)."""

    def attention_images(self, count):
        """float32 RGB [N, H, W, 3] images whose attention maps are drawn, or None (no pictures)."""
        return None

    def write_pictures(self, model, writer, step, count=NUM_ATTENTION_IMAGES):
        """TensorBoard `attention/<stages>`: fixed images and their attention maps (paper Fig. 3)."""
        images = self.attention_images(count) if writer else None
        if images is None:
            return
        attention = model(images, training=False)["attention"].numpy()
        picture = attention_figure(images, attention, model.attention_map_size, stage_names=model.attention_stages)
        with writer.as_default(step=step):
            tf.summary.image("attention/" + "_".join(model.attention_stages), picture[None])

"""CIFAR-100 classification with the SAL network (paper §4.5, Table 4): top-1 test error %."""

import numpy as np
import tensorflow as tf

from sal_tf.data import cifar100, cifar100_pipelines
from sal_tf.training.config import TABLE4_ROWS
from sal_tf.training.tasks.base import Evaluation, Task


class CifarTask(Task):
    """Stage 1 with softmax (+ SAC) on `Cifar100Data`; evaluation is Table 4's top-1 test error %.

    Args:
        config: a `CifarTrainConfig`.
        data: `sal_tf.data.cifar100.Cifar100Data`.
    """

    data_name = "CIFAR-100 test"
    num_classes = cifar100.NUM_CLASSES

    def __init__(self, config, data):
        super().__init__(config)
        self.data = data
        # Tensors built once, shared by every epoch's pipeline.
        self._train_images = tf.constant(data.train_images)
        self._train_labels = tf.constant(data.train_labels)

    def build_inputs(self, stage, epoch, num_replicas=1):
        return cifar100_pipelines.build_train_dataset(
            self._train_images,
            self._train_labels,
            batch_size=stage.config.batch_size,
            seed=self.cfg.seed,
            epoch=epoch,
            pad=4 if self.cfg.pad_crop else 0,
        )

    def steps_per_epoch(self, stage, num_replicas=1):
        return cifar100_pipelines.steps_per_epoch(len(self.data.train_labels), stage.config.batch_size)

    def test_split(self):
        n = self.cfg.max_eval_images or len(self.data.test_labels)
        return self.data.test_images[:n], self.data.test_labels[:n]

    def evaluate(self, model, tag, out_dir=None):
        """{error, top5_error (in %), accuracy, num_images} on the test split."""
        images, labels = self.test_split()
        ds = cifar100_pipelines.build_eval_dataset(images, labels, batch_size=self.cfg.eval_batch_size)
        logits_fn = tf.function(lambda x: model(x, training=False)["logits"])
        top1 = top5 = 0
        for x, y in ds:
            logits, y = logits_fn(x).numpy(), y.numpy()
            top1 += int(np.sum(np.argmax(logits, axis=1) == y))
            top5 += int(np.sum(np.any(np.argsort(-logits, axis=1)[:, :5] == y[:, None], axis=1)))
        n = len(labels)
        return Evaluation({"error": 100.0 * (1 - top1 / n), "top5_error": 100.0 * (1 - top5 / n),
                           "accuracy": top1 / n, "num_images": n})  # fmt: skip

    def format_results(self, res):
        return f"error {res['error']:.2f} % (top-5 {res['top5_error']:.2f} %) on {res['num_images']} images"

    def log_results(self, prefix, res):
        tf.summary.scalar(f"{prefix}/error_percent", res["error"])
        tf.summary.scalar(f"{prefix}/top5_error_percent", res["top5_error"])

    def attention_images(self, count):
        return self.data.test_images[:count].astype(np.float32)


def table4_summary(config, results):
    """The Table 4 comparison of a finished run: row, our error %, the paper's (None if not a Table 4 row)."""
    key, row = config.table4_row
    return {
        "row": row,
        "test_error_percent": results["stage1"]["error"],
        "paper_test_error_percent": TABLE4_ROWS[key][3] if key else None,
        "num_test_images": results["stage1"]["num_images"],
    }

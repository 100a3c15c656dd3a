"""The person re-ID task (paper §3–4): Market-1501 / DukeMTMC-reID / custom data, Market protocol."""

import os

import numpy as np
import tensorflow as tf

from sal_tf.data import pipelines
from sal_tf.evaluation.reid import SUMMARY_KEYS, evaluate_model, format_results
from sal_tf.models import get_preset
from sal_tf.training.tasks.base import Evaluation, Task

NUM_RANK_LIST_QUERIES = 4


def rank_list_queries(num_queries, count=NUM_RANK_LIST_QUERIES):
    """`count` query indices spread evenly over the query list."""
    return np.linspace(0, num_queries - 1, min(count, num_queries)).astype(int) if num_queries else np.array([], int)


class ReIDTask(Task):
    """Trains the SAL model on a `ReIDDataset` and evaluates it on its query / gallery splits.

    Args:
        config: a `TrainConfig`.
        data: a checked `sal_tf.data.ReIDDataset` (`sal_tf.data.load_dataset`).
    """

    def __init__(self, config, data):
        super().__init__(config)
        self.data = data
        self.data_name = data.name
        self.num_classes = data.num_train_pids
        self.image_size = tuple(get_preset(config.preset)["image_size"])

    def build_inputs(self, stage, epoch, num_replicas=1):
        """The stage's global batches of one epoch, seeded by `(seed + stage offset, epoch)`.

        The paper's pad-10 crop is for 256×128 inputs; the padding scales with the input height
        (2 px for the 64×32 `tiny` preset).
        """
        s = stage.config
        return pipelines.build_train_dataset(
            self.data.train,
            image_size=self.image_size,
            batch_size=s.batch_size,
            sampling=s.sampling,
            num_instances=s.num_instances,
            num_replicas=num_replicas,
            seed=self.cfg.seed + stage.seed_offset,
            epoch=epoch,
            pad_crop=self.cfg.pad_crop,
            pad=max(1, round(10 * self.image_size[0] / 256)),
            random_erasing=self.cfg.random_erasing,
            color_jitter=self.cfg.color_jitter,
        )

    def steps_per_epoch(self, stage, num_replicas=1):
        s = stage.config
        return pipelines.steps_per_epoch(self.data.train, s.batch_size, s.sampling, s.num_instances, num_replicas)

    def eval_datasets(self):
        """(query, gallery) `tf.data` image batches in record order."""
        return pipelines.build_query_gallery_datasets(self.data, self.image_size, self.cfg.eval_batch_size)

    def evaluate(self, model, tag, out_dir=None):
        """Market-protocol CMC / mAP / mINP (+ re-ranked); rank lists to `<out_dir>/rank_lists/<tag>.png`."""
        query_images, gallery_images = self.eval_datasets()
        results, rank_lists = evaluate_model(
            model,
            query_images,
            gallery_images,
            self.data.query,
            self.data.gallery,
            rerank=self.cfg.rerank,
            flip=self.cfg.flip_eval,
            verbose=self.cfg.verbose > 0 and out_dir is not None,
            rank_list_queries=rank_list_queries(len(self.data.query)),
            rank_list_path=os.path.join(out_dir, "rank_lists", f"{tag}.png") if out_dir else None,
        )
        return Evaluation(results, None if rank_lists is None else {"rank_lists": rank_lists})

    def format_results(self, res):
        return format_results(res)

    def log_results(self, prefix, res):
        """TensorBoard scalars `<prefix>/mAP ...` and `<prefix>_rerank/...`."""
        for key in SUMMARY_KEYS:
            tf.summary.scalar(f"{prefix}/{key}", res[key])
            if "rerank" in res:
                tf.summary.scalar(f"{prefix}_rerank/{key}", res["rerank"][key])

    def attention_images(self, count):
        if not self.data.query:
            return None
        ds = pipelines.build_eval_dataset(self.data.query[:count], image_size=self.image_size, batch_size=count)
        return next(iter(ds)).numpy()

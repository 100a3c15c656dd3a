"""`tf.distribute` strategies and identity-preserving input distribution.

One custom loop serves every strategy (Keras 3 `fit` breaks under
MultiWorkerMirroredStrategy, keras-team/keras#20585). Inputs are distributed
with `distribute_datasets_from_function`: every input pipeline builds the same
global batch (same seed) and hands each of its local replicas a contiguous
slice, so a P×K batch gives every replica P/R whole identities and batch-hard
mining per replica stays valid.
"""

import json
import os

import tensorflow as tf

from sal_tf.training.config import STRATEGIES


def build_strategy(name):
    """Returns the strategy for `--strategy=default|mirrored|multi_worker`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}).'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--strategy must be one of {'|'.join(STRATEGIES)}. Received: {name!r}")


def is_chief(strategy):
    """True on the worker that writes checkpoints, summaries and results."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_id is None:
        return 0
    return int(resolver.task_id)


def distribute_global_batches(strategy, make_global_dataset):
    """Distributes a dataset of *global* batches, each replica taking its slice.

    Args:
        strategy: a `tf.distribute.Strategy`.
        make_global_dataset: () → `tf.data.Dataset` of (images [B,...], labels [B])
            global batches, identical on every worker (seeded).

    Returns:
        a distributed dataset whose per-replica values are rows
        [r·B/R, (r+1)·B/R) of each global batch, r = global replica id.
    """
    num_replicas = strategy.num_replicas_in_sync
    if num_replicas == 1:
        return make_global_dataset()

    def dataset_fn(input_context):
        ds = make_global_dataset()
        per_pipeline = num_replicas // input_context.num_input_pipelines
        first = input_context.input_pipeline_id * per_pipeline

        def to_slices(images, labels):
            b = tf.shape(labels)[0] // num_replicas
            images = tf.reshape(images, tf.concat([[num_replicas, b], tf.shape(images)[1:]], 0))
            labels = tf.reshape(labels, [num_replicas, b])
            return tf.data.Dataset.from_tensor_slices(
                (images[first : first + per_pipeline], labels[first : first + per_pipeline])
            )

        ds = ds.flat_map(to_slices)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)

"""The re-ID trainer: builds model / inputs / losses and runs the stages.

One custom loop (`strategy.run` + a Keras optimizer) serves the default,
mirrored and multi-worker strategies. Layout of `--model_dir`:

    config.json              the run's configuration (a different one is refused)
    stage{1,2}/ckpt-*        periodic checkpoints (model, optimizer, epoch, step)
    stage{1,2}.keras         the model at the end of the stage (marks it done)
    results.json             evaluation results (untrained, per stage, per eval)
    tensorboard/stage{1,2}/  scalars and images;  tensorboard/eval/  eval metrics
"""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from sal_tf.data import pipelines
from sal_tf.losses import SALObjective
from sal_tf.models import build_model
from sal_tf.training import distribute
from sal_tf.training.checkpointing import StageCheckpoint
from sal_tf.training.config import TrainConfig
from sal_tf.training.reid_eval import evaluate_reid, format_results
from sal_tf.training.schedules import WarmupStepDecay
from sal_tf.training.summaries import attention_overlays


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf."""


class ConfigMismatch(ValueError):
    """`--model_dir` holds a run with another configuration."""


class ReIDTrainer:
    """Trains the SAL model on a `ReIDDataset` with the settings of a `TrainConfig`.

    Args:
        config: the run's `TrainConfig`.
        dataset: a `sal_tf.data.records.ReIDDataset` (train / query / gallery).
        strategy: optional `tf.distribute.Strategy` (default: from `config.strategy`).
    """

    def __init__(self, config: TrainConfig, dataset, strategy=None):
        self.cfg = config
        self.data = dataset
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(config.seed)
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        self.strategy = strategy or distribute.build_strategy(config.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.chief = distribute.is_chief(self.strategy)
        self.worker = distribute.worker_id(self.strategy)
        self.model_dir = config.model_dir
        self.image_size = tuple(self._preset_image_size())
        self.results_path = os.path.join(self.model_dir, "results.json")
        self._check_model_dir()

    # === Setup ===
    def _preset_image_size(self):
        from sal_tf.models import get_preset

        return get_preset(self.cfg.preset)["image_size"]

    def _check_model_dir(self):
        path = os.path.join(self.model_dir, "config.json")
        if os.path.exists(path):
            with open(path) as f:
                stored = json.load(f)
            diffs = self.cfg.differences(stored)
            if diffs:
                lines = "\n".join(f"  {k}: stored {a!r}, now {b!r}" for k, (a, b) in diffs.items())
                raise ConfigMismatch(
                    f"--model_dir={self.model_dir} holds a run with a different configuration "
                    f"({path}):\n{lines}\nUse another --model_dir, or rerun with the stored settings to resume."
                )
        elif self.chief:
            os.makedirs(self.model_dir, exist_ok=True)
            _atomic_write(path, self.cfg.to_json())

    @property
    def num_classes(self):
        """Size of the classifier: the training identities (subclasses override)."""
        return self.data.num_train_pids

    def model_overrides(self):
        """`build_model` arguments beyond the preset: the Table 1 switches (subclasses may add)."""
        return dict(dilation=self.cfg.dilation, multi_level=self.cfg.multi_level)

    def stage_model_path(self, stage):
        return os.path.join(self.model_dir, f"stage{stage}.keras")

    def build_model(self, stage):
        """Builds the stage's model in the strategy scope, initialised as the paper says.

        Stage 1 (and a stage 2 without softmax): backbone weights from
        `--backbone_weights`. Stage 2 with softmax: the stage-1 model.
        """
        init_from = None
        if stage == 2 and self.cfg.has_softmax:
            init_from = self.stage_model_path(1)
            if not os.path.exists(init_from):
                raise FileNotFoundError(
                    f"--stage=2 starts from the stage-1 model, but {init_from} does not exist. "
                    f"Train stage 1 first: python -m trainers.market --stage=1 --model_dir={self.model_dir} "
                    "(with the same other flags), or use --stage=all."
                )
        with self.strategy.scope():
            model = build_model(
                self.cfg.preset,
                num_classes=self.num_classes,
                backbone_weights=None if init_from else _none_if_empty(self.cfg.backbone_weights),
                **self.model_overrides(),
                verbose=self.cfg.verbose > 0 and self.chief,
            )
        if init_from:
            source = keras.saving.load_model(init_from, compile=False)
            model.set_weights(source.get_weights())
            if self.cfg.verbose:
                print(f"Stage 2 starts from {init_from}")
        return model

    def _set_sync_bn(self, model, on):
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = bool(on)

    def build_optimizer(self, stage_cfg, steps_per_epoch):
        schedule = WarmupStepDecay(
            stage_cfg.learning_rate,
            decay_steps=stage_cfg.decay_every_epochs * steps_per_epoch,
            decay_rate=stage_cfg.decay_rate,
            warmup_steps=stage_cfg.warmup_epochs * steps_per_epoch,
        )
        opt = keras.optimizers.SGD(
            learning_rate=schedule, momentum=stage_cfg.momentum, weight_decay=stage_cfg.weight_decay or None
        )
        if self.cfg.mixed_precision:
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    def build_inputs(self, stage, epoch):
        """The global-batch dataset of one epoch (seeded by `(seed, epoch)`).

        The paper's pad-10 crop is for 256×128 inputs; the padding scales with the
        input height (2 px for the 64×32 `tiny` preset).
        """
        s = self.cfg.stage1 if stage == 1 else self.cfg.stage2
        pad = max(1, round(10 * self.image_size[0] / 256))
        if stage == 1:
            return pipelines.build_train_dataset(
                self.data.train,
                image_size=self.image_size,
                batch_size=s.batch_size,
                sampling="random",
                num_replicas=self.num_replicas,
                seed=self.cfg.seed,
                epoch=epoch,
                pad_crop=self.cfg.pad_crop,
                pad=pad,
                random_erasing=self.cfg.random_erasing,
            )
        return pipelines.build_train_dataset(
            self.data.train,
            image_size=self.image_size,
            batch_size=s.num_ids * s.num_instances,
            sampling="pk",
            num_instances=s.num_instances,
            num_replicas=self.num_replicas,
            seed=self.cfg.seed + 1,
            epoch=epoch,
            pad_crop=self.cfg.pad_crop,
            pad=pad,
            random_erasing=self.cfg.random_erasing,
        )

    def steps_per_epoch(self, stage):
        s = self.cfg.stage1 if stage == 1 else self.cfg.stage2
        if stage == 1:
            steps = pipelines.steps_per_epoch(self.data.train, s.batch_size, "random")
        else:
            steps = pipelines.steps_per_epoch(
                self.data.train, s.num_ids * s.num_instances, "pk", num_instances=s.num_instances
            )
        if self.cfg.max_steps_per_epoch:
            steps = min(steps, self.cfg.max_steps_per_epoch)
        if steps < 1:
            raise ValueError(
                f"Stage {stage}: the training split ({len(self.data.train)} images) is smaller than one batch."
            )
        return steps

    # === Run ===
    def run(self):
        """Runs the stages `--stage` selects; returns the results dict."""
        stages = self.cfg.stages_to_run()
        results = self._load_results()
        for stage in stages:
            results = self.train_stage(stage, results)
        return results

    def train_stage(self, stage, results=None):
        results = results if results is not None else self._load_results()
        final_path = self.stage_model_path(stage)
        if os.path.exists(final_path):
            if self.cfg.verbose:
                print(f"Stage {stage} already finished ({final_path}); skipping.")
            return results
        stage_cfg = self.cfg.stage1 if stage == 1 else self.cfg.stage2
        steps = self.steps_per_epoch(stage)
        model = self.build_model(stage)
        objective = SALObjective(**self.cfg.stage_loss(stage))
        with self.strategy.scope():
            optimizer = self.build_optimizer(stage_cfg, steps)
            optimizer.build(model.trainable_variables)
        ckpt = StageCheckpoint(
            os.path.join(self.model_dir, f"stage{stage}"), model, optimizer, chief=self.chief, worker=self.worker
        )
        restored = ckpt.restore()
        start_epoch, start_step = int(ckpt.epoch.numpy()), int(ckpt.step_in_epoch.numpy())
        if restored and self.cfg.verbose:
            print(f"Resuming stage {stage} from {restored} (epoch {start_epoch + 1}, step {start_step}).")

        if (
            self.cfg.eval_untrained
            and stage == self.cfg.stages_to_run()[0]
            and not restored
            and "untrained" not in results
        ):
            results["untrained"] = self.evaluate(model, tag="untrained", step=0)
            self._save_results(results)

        writer = self._writer(f"stage{stage}")
        self._set_sync_bn(model, self.num_replicas > 1)
        train_step = self._make_train_step(model, objective, optimizer)
        global_step = int(optimizer.iterations.numpy())
        stage_start = time.perf_counter()  # train_seconds: this process's part (a resumed run counts its own)
        for epoch in range(start_epoch, stage_cfg.epochs):
            first = start_step if epoch == start_epoch else 0
            if first >= steps:
                continue
            ds = self.build_inputs(stage, epoch).take(steps).skip(first)
            iterator = iter(distribute.distribute_global_batches(self.strategy, lambda ds=ds: ds))
            bar = keras.utils.Progbar(
                steps, verbose=1 if (self.cfg.verbose and self.chief) else 0, stateful_metrics=None, unit_name="step"
            )
            if bar.verbose:
                print(f"Stage {stage} epoch {epoch + 1}/{stage_cfg.epochs}")
            bar.update(first)
            batch = stage_cfg.batch_size if stage == 1 else stage_cfg.num_ids * stage_cfg.num_instances
            for step in range(first, steps):
                t0 = time.perf_counter()
                terms = train_step(iterator)
                terms = {k: float(v) for k, v in terms.items()}
                dt = time.perf_counter() - t0
                global_step += 1
                if not math.isfinite(terms["loss"]):
                    raise TrainingDiverged(
                        f"Stage {stage}: the loss became {terms['loss']} at epoch {epoch + 1}, step {step + 1} "
                        f"(terms: {terms}). Training stopped; the last good checkpoint is kept: "
                        f"{ckpt.latest or '(none written yet)'}. Lower the learning rate or check the data."
                    )
                lr = float(_current_lr(optimizer))
                shown = {k: v for k, v in terms.items() if not k.endswith(("_active_1", "_active_2", "_active"))}
                bar.update(step + 1, values=[*shown.items(), ("lr", lr), ("img/s", batch / dt)])
                ckpt.step_in_epoch.assign(step + 1)
                if writer and global_step % max(1, self.cfg.log_every_steps) == 0:
                    with writer.as_default(step=global_step):
                        for k, v in terms.items():
                            tf.summary.scalar(f"train/{k}", v)
                        tf.summary.scalar("train/learning_rate", lr)
                        tf.summary.scalar("train/images_per_second", batch / dt)
                if (
                    self.cfg.checkpoint_every_steps
                    and global_step % self.cfg.checkpoint_every_steps == 0
                    and step + 1 < steps
                ):
                    ckpt.save(global_step)
            ckpt.epoch.assign(epoch + 1)
            ckpt.step_in_epoch.assign(0)
            ckpt.save(global_step)
            if self.cfg.eval_every and (epoch + 1) % self.cfg.eval_every == 0 and epoch + 1 < stage_cfg.epochs:
                results.setdefault("history", []).append(
                    {
                        "stage": stage,
                        "epoch": epoch + 1,
                        **self.evaluate(model, tag=f"stage{stage}_epoch{epoch + 1}", step=global_step),
                    }
                )
                self._save_results(results)

        self._set_sync_bn(model, False)
        train_seconds = time.perf_counter() - stage_start
        results[f"stage{stage}"] = self.evaluate(model, tag=f"stage{stage}", step=global_step)
        results[f"stage{stage}"]["train_seconds"] = round(train_seconds, 1)
        self._write_images(model, writer, global_step)
        if self.chief:
            _atomic_save_model(model, final_path)
        self._save_results(results)
        return results

    def _make_train_step(self, model, objective, optimizer):
        strategy, num_replicas, mixed = self.strategy, self.num_replicas, self.cfg.mixed_precision

        def replica_step(images, labels):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                terms = objective(labels, outputs)
                loss = terms["loss"] / num_replicas
                scaled = optimizer.scale_loss(loss) if mixed else loss
            grads = tape.gradient(scaled, model.trainable_variables)
            # Variables the active loss terms do not reach (e.g. the classifier in a
            # metric-only ablation setting) get None: leave them out of the update.
            optimizer.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
            return terms

        if self.cfg.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True)

        @tf.function
        def train_step(iterator):
            images, labels = next(iterator)
            per_replica = strategy.run(replica_step, args=(images, labels))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

        return train_step

    # === Evaluation and logging ===
    def evaluate(self, model, tag, step):
        """Market-protocol evaluation on query/gallery; prints a table, logs TensorBoard."""
        res = evaluate_reid(
            model,
            self.data.query,
            self.data.gallery,
            image_size=self.image_size,
            batch_size=self.cfg.eval_batch_size,
            rerank=self.cfg.rerank,
            flip=self.cfg.flip_eval,
            verbose=self.cfg.verbose > 0 and self.chief,
            rank_list_path=os.path.join(self.model_dir, "rank_lists", f"{tag}.png") if self.chief else None,
        )
        if self.cfg.verbose and self.chief:
            print(f"Evaluation [{tag}] on {self.data.name}:\n{format_results(res)}")
        writer = self._writer("eval")
        if writer:
            with writer.as_default(step=step):
                for key in ("mAP", "mINP", "rank1", "rank5", "rank10"):
                    tf.summary.scalar(f"{tag.split('_')[0]}/{key}", res[key])
                    if "rerank" in res:
                        tf.summary.scalar(f"{tag.split('_')[0]}_rerank/{key}", res["rerank"][key])
                if "rank_list_image" in res:
                    tf.summary.image(f"{tag}/rank_lists", res["rank_list_image"][None], step=step)
        res.pop("rank_list_image", None)
        return res

    def attention_images(self, count):
        """The fixed images whose attention maps go to TensorBoard: float32 RGB [N,H,W,3] or None."""
        if not self.data.query:
            return None
        ds = pipelines.build_eval_dataset(self.data.query[:count], image_size=self.image_size, batch_size=count)
        return next(iter(ds)).numpy()

    def _write_images(self, model, writer, step, count=6):
        images = self.attention_images(count) if writer else None
        if images is None:
            return
        att = model(images, training=False)["attention"].numpy()
        panels = attention_overlays(images, att, _attention_grid(model))
        with writer.as_default(step=step):
            tf.summary.image("attention/stage4_5_6", panels, max_outputs=count)

    def _writer(self, name):
        if not self.chief:
            return None
        if not hasattr(self, "_writers"):
            self._writers = {}
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.model_dir, "tensorboard", name))
        return self._writers[name]

    def _load_results(self):
        if os.path.exists(self.results_path):
            with open(self.results_path) as f:
                return json.load(f)
        return {}

    def _save_results(self, results):
        if self.chief:
            _atomic_write(self.results_path, json.dumps(_jsonable(results), indent=2, sort_keys=True))


def _attention_grid(model):
    shape = model.get_layer("conv6_block3_out").output.shape
    return int(shape[1]), int(shape[2])


def _current_lr(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner.learning_rate
    return lr.numpy() if hasattr(lr, "numpy") else lr


def _none_if_empty(value):
    return None if value in (None, "", "none", "None") else value


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def _atomic_write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _atomic_save_model(model, path):
    tmp = f"{path[: -len('.keras')]}.tmp{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, path)

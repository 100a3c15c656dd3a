"""Runs a task's stages in a `--model_dir`: the generic part of training that owns the files.

Layout of `--model_dir`:

    config.json              the run's configuration (a different one is refused)
    stage{1,2}/ckpt-*        periodic checkpoints (model, optimizer, epoch, step)
    stage{1,2}.keras         the model at the end of the stage (marks it done; written before it is evaluated)
    results.json             evaluation results (untrained, per stage, per periodic evaluation)
    tensorboard/stage{1,2}/  scalars and images;  tensorboard/eval/  evaluation metrics

A finished stage is not retrained. Its stored result is reused only if it was computed with the
same evaluation settings (`TrainConfig.eval_settings`); otherwise — or when an evaluation failed
after the model was saved — the stage's model is evaluated again.
"""

import contextlib
import json
import os
import time

import keras
import tensorflow as tf

from sal_tf.training import distribute
from sal_tf.training.config import ConfigMismatch  # noqa: F401  (raised by check_model_dir; callers catch it here)
from sal_tf.training.loop import LoopOptions, StageLoop, center_side_update
from sal_tf.training.optimizer import build_optimizer
from sal_tf.training.provenance import provenance
from sal_tf.utils import write_atomically, write_json


def check_model_dir(config, chief=True):
    """Refuses a model_dir whose config.json differs from `config` (`ConfigMismatch` listing the differing fields)."""
    path = os.path.join(config.model_dir, "config.json")
    if not os.path.exists(path):
        if chief:
            os.makedirs(config.model_dir, exist_ok=True)
            write_atomically(path, config.to_json())
        return
    with open(path) as f:
        config.check_same_as(json.load(f), f"--model_dir={config.model_dir} holds a run ({path})")


def set_up_runtime(config):
    """Seeds and determinism of a run (before any model is built); the precision policy is `dtype_policy`'s."""
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)


@contextlib.contextmanager
def dtype_policy(mixed_precision):
    """Keras' global dtype policy set to mixed_float16 (or float32) while a model is built, then restored.

    Layers keep the policy they were built with, so a run's model computes in float16 without the
    process-wide policy outliving the build (`Experiment` builds and loads its models inside it).
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class Experiment:
    """Trains and evaluates the stages of `config` with `task` (a `sal_tf.training.tasks` object)."""

    def __init__(self, config, task, strategy=None):
        self.cfg, self.task = config, task
        set_up_runtime(config)
        self.strategy = strategy or distribute.build_strategy(config.strategy)
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.chief = distribute.is_chief(self.strategy)
        self.model_dir = config.model_dir
        self.results_path = os.path.join(self.model_dir, "results.json")
        self._writers = {}
        check_model_dir(config, self.chief)

    def stage_model_path(self, number):
        return os.path.join(self.model_dir, f"stage{number}.keras")

    def run(self):
        """Runs the stages `--stage` selects; returns the results dict."""
        results = self.load_results()
        results["config"] = self.cfg.to_dict()  # what produced the numbers (each also has its `provenance`)
        for stage in self.cfg.stages():
            results = self.run_stage(stage, results)
        return results

    def run_stage(self, stage, results):
        final_path = self.stage_model_path(stage.number)
        if os.path.exists(final_path):
            return self._reuse_finished(stage, final_path, results)
        steps = self.steps_per_epoch(stage)
        model = self.build_model(stage)
        with self.strategy.scope():
            optimizer = build_optimizer(stage.config, steps, self.cfg.mixed_precision)
            optimizer.build(model.trainable_variables)
            objective = self.task.build_losses(stage)
            side = center_side_update(objective, self.cfg.center_lr)
        loop = StageLoop(
            self.strategy,
            model,
            objective,
            optimizer,
            os.path.join(self.model_dir, stage.name),
            self.writer(stage.name),
            LoopOptions.of(self.cfg),
            stage.name,
            side=side,
        )
        if loop.restored and self.cfg.verbose:
            epoch, step = loop.position
            print(f"Resuming {stage.name} from {loop.restored} (epoch {epoch + 1}, step {step}).")
        if self._wants_untrained_eval(stage, loop, results):
            results["untrained"] = self.evaluate(model, "untrained", step=0)
            self.save_results(results)
        start = time.perf_counter()  # train_seconds: this process's part (a resumed run counts its own)
        set_sync_batch_norm(model, self.num_replicas > 1)
        global_step = loop.run(
            stage.config.epochs,
            steps,
            lambda epoch: self.task.build_inputs(stage, epoch, self.num_replicas),
            stage.config.batch_size,
            on_epoch_end=lambda epoch, step: self._periodic_eval(model, stage, epoch, step, results),
        )
        set_sync_batch_norm(model, False)
        train_seconds = round(time.perf_counter() - start, 1)
        if self.chief:
            save_model_atomically(model, final_path)
        results[stage.name] = dict(self.evaluate(model, stage.name, global_step), train_seconds=train_seconds)
        self.task.write_pictures(model, self.writer(stage.name), global_step)
        self.save_results(results)
        return results

    def _reuse_finished(self, stage, final_path, results):
        stored = results.get(stage.name)
        settings = self.cfg.eval_settings()
        if stored is not None and stored.get("eval_settings") == settings:
            if self.cfg.verbose:
                print(f"{stage.name} already finished ({final_path}); reusing its results.")
            return results
        why = "has no stored result" if stored is None else f"was evaluated with {stored.get('eval_settings')}"
        if self.cfg.verbose:
            print(f"{stage.name} already finished ({final_path}) but {why}; evaluating it with {settings}.")
        with self.strategy.scope():
            model = keras.saving.load_model(final_path, compile=False)
        step = int(stored.get("step", 0)) if stored else 0
        kept = {"train_seconds": stored["train_seconds"]} if stored and "train_seconds" in stored else {}
        results[stage.name] = {**self.evaluate(model, stage.name, step), **kept}  # nothing stale carried over
        self.save_results(results)
        return results

    def _wants_untrained_eval(self, stage, loop, results):
        first = self.cfg.stages()[0].number == stage.number
        return self.cfg.eval_untrained and first and not loop.restored and "untrained" not in results

    def _periodic_eval(self, model, stage, epoch, step, results):
        every = self.cfg.eval_every
        if every and epoch % every == 0 and epoch < stage.config.epochs:
            tag = f"{stage.name}_epoch{epoch}"
            entry = {"stage": stage.number, "epoch": epoch, **self.evaluate(model, tag, step)}
            results.setdefault("history", []).append(entry)
            self.save_results(results)

    def steps_per_epoch(self, stage):
        steps = self.task.steps_per_epoch(stage, self.num_replicas)
        if self.cfg.max_steps_per_epoch:
            steps = min(steps, self.cfg.max_steps_per_epoch)
        if steps < 1:
            raise ValueError(f"{stage.name}: the training split is smaller than one batch ({stage.config.batch_size}).")
        return steps

    def build_model(self, stage):
        """The stage's model in the strategy scope: from the earlier stage's model, or the backbone weights."""
        init_from = None
        if stage.init_from is not None:
            init_from = self.stage_model_path(stage.init_from)
            if not os.path.exists(init_from):
                raise FileNotFoundError(
                    f"--stage={stage.number} starts from the stage-{stage.init_from} model, but {init_from} does not "
                    f"exist. Train stage {stage.init_from} first (--stage={stage.init_from} with the same --model_dir "
                    "and other flags), or use --stage=all."
                )
        with self.strategy.scope(), dtype_policy(self.cfg.mixed_precision):
            model = self.task.build_model(pretrained=init_from is None, verbose=self.cfg.verbose > 0 and self.chief)
        if init_from:
            model.set_weights(keras.saving.load_model(init_from, compile=False).get_weights())
            if self.cfg.verbose:
                print(f"{stage.name.capitalize()} starts from {init_from}")
        return model

    def evaluate(self, model, tag, step):
        """The task's evaluation, printed and logged; records the evaluation settings it used."""
        res, pictures = self.task.evaluate(model, tag, self.model_dir if self.chief else None)
        if self.cfg.verbose and self.chief:
            print(f"Evaluation [{tag}] on {self.task.data_name}:\n{self.task.format_results(res)}")
        writer = self.writer("eval")
        if writer:
            prefix = tag.split("_")[0]
            with writer.as_default(step=step):
                self.task.log_results(prefix, res)
                for name, picture in (pictures or {}).items():
                    tf.summary.image(f"{prefix}/{name}", picture[None])
        return dict(res, eval_settings=self.cfg.eval_settings(), step=int(step), provenance=provenance(self.cfg))

    def writer(self, name):
        if not self.chief:
            return None
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.model_dir, "tensorboard", name))
        return self._writers[name]

    def load_results(self):
        if os.path.exists(self.results_path):
            with open(self.results_path) as f:
                return json.load(f)
        return {}

    def save_results(self, results):
        if self.chief:
            write_json(self.results_path, results)


def set_sync_batch_norm(model, on):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = bool(on)


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary `.keras` file and `os.replace`."""
    tmp = f"{path[: -len('.keras')]}.tmp{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, path)

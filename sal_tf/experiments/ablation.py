"""Table 1 ablation (paper §4.3): each setting trained like the main trainer, tabulated by mAP / Rank-1.

`SETTINGS` (`sal_tf/experiments/table1.py`) is our reading of Table 1 (BUILD.md "Table 1 ablation" explains it: the extracted table
lost most check marks; the text fixes them). Settings without DIL are plain ResNet50 — no stage6,
no multi-level feature — since stage6 exists to undo dilation's gridding (§3.1); the FC-1024
embedding stays in every setting. Each setting trains its `TrainConfig.stages()` (softmax only →
stage 1; softmax + metric → stage 1 then stage 2 from it; metric only → stage 2 from the backbone
initialisation); everything else comes from the base config. Rows B and SB train the `bot` and
`sal_bot` recipes (`sal_tf/training/recipes.py`) on the base config.

Layout under the base `model_dir`:

    setting_<id>/                       a normal trainer model_dir (config.json, stage*.keras, results.json)
    setting_<id>/setting_result.json    the setting's final mAP / Rank-1 (marks it finished)
    setting_<id>/seed_<s>/              with --seeds=N: one trainer model_dir per seed (mean ± std in the tables)
    table1.md, table1.json              the table so far, beside the paper's numbers

A setting whose `setting_result.json` holds the same configuration is not rerun; an interrupted
one resumes (finished stages are skipped, checkpoints restored).
"""

import dataclasses
import gc
import json
import os

import keras

from sal_tf.experiments.ablation_report import build_tables
from sal_tf.experiments.table1 import SETTING_IDS, SETTINGS, SWITCHES
from sal_tf.training import distribute
from sal_tf.training.commands import load_reid_data
from sal_tf.training.experiment import Experiment
from sal_tf.training.recipes import apply_recipe
from sal_tf.training.seeds import run_seeds
from sal_tf.training.tasks import ReIDTask
from sal_tf.utils import write_atomically, write_json

RESULT_FILE = "setting_result.json"


def parse_settings(text):
    """'1,3,8' / '3t' / 'all' → ordered list of setting ids; a clear error for unknown ids."""
    if text in (None, "", "all"):
        return list(SETTING_IDS)
    ids = []
    for raw in str(text).split(","):
        sid = raw.strip().upper().replace("(T)", "T")
        if sid and sid not in SETTINGS:
            raise ValueError(
                f"--settings: unknown Table 1 setting {raw.strip()!r}; expected a comma-separated subset of "
                f"{','.join(SETTING_IDS)} (or 'all')."
            )
        if sid and sid not in ids:
            ids.append(sid)
    if not ids:
        raise ValueError(f"--settings={text!r} names no setting; expected e.g. 1,3,8 or all.")
    return ids


def setting_config(base, sid):
    """The `TrainConfig` of setting `sid`: the base config with the setting's recipe and switches, all its stages."""
    switches = {k: SETTINGS[sid][k] for k in SWITCHES}
    config = apply_recipe(base, SETTINGS[sid]["recipe"])
    return dataclasses.replace(
        config, model_dir=os.path.join(base.model_dir, f"setting_{sid}"), stage="all", **switches
    )


def finished_result(config, seeds=1):
    """The stored result of a setting run with `config` over `seeds` seeds, or None when it has not finished.

    Raises:
        ConfigMismatch: the stored result was produced with another configuration.
    """
    path = os.path.join(config.model_dir, RESULT_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        stored = json.load(f)
    config.check_same_as(stored.get("config", {}), f"{path} was produced")
    return stored if len(stored.get("seeds", [config.seed])) == seeds else None


def run_setting(base, sid, data, strategy=None, seeds=1):
    """Trains (or resumes) one setting and writes its `setting_result.json`. Returns (result, ran).

    With `seeds` > 1 the setting trains in `setting_<id>/seed_<s>/` (`sal_tf.training.seeds`) and its
    result holds the means over the seeds, with their sample standard deviations (`*_std`).
    """
    config = setting_config(base, sid)
    done = finished_result(config, seeds)
    if done is not None:
        if base.verbose:
            print(f"Table 1 setting {sid}: already finished ({os.path.join(config.model_dir, RESULT_FILE)}).")
        return done, False
    if base.verbose:
        switches = " ".join(f"{k}={SETTINGS[sid][k]}" for k in SWITCHES)
        print(f"=== Table 1 setting {sid}: {switches} → {config.model_dir}")
    summary = run_seeds(config, lambda c: ReIDTask(c, data), seeds, strategy) if seeds > 1 else None
    final = summary_final(summary, config) if summary else _train_once(config, data, strategy)
    result = {
        "setting": sid,
        "recipe": SETTINGS[sid]["recipe"],
        **{k: SETTINGS[sid][k] for k in SWITCHES},
        "stages": [s.number for s in config.stages()],
        **final,
        "seeds": summary["seeds"] if summary else [config.seed],
        "config": config.to_dict(),
    }
    if distribute.is_chief(strategy):  # None (the default strategy) is the chief
        write_json(os.path.join(config.model_dir, RESULT_FILE), result)
    return result, True


def _train_once(config, data, strategy):
    """The final stage's mAP / Rank-1 / Rank-5 (and re-ranked mAP / Rank-1) of one run of `config`."""
    experiment = Experiment(config, ReIDTask(config, data), strategy=strategy)
    final = experiment.run()[config.stages()[-1].name]
    del experiment
    keras.backend.clear_session()
    gc.collect()
    return {
        **{k: final.get(k) for k in ("mAP", "rank1", "rank5")},
        "rerank": {k: final["rerank"][k] for k in ("mAP", "rank1")} if "rerank" in final else None,
    }


def summary_final(summary, config):
    """The final stage's means (and `*_std`) over the seeds of a seeds summary."""
    stage = summary["stages"][config.stages()[-1].name]
    means = lambda variant: {k: stage[variant][k]["mean"] for k in ("mAP", "rank1")}  # noqa: E731
    stds = lambda variant: {f"{k}_std": stage[variant][k]["std"] for k in ("mAP", "rank1")}  # noqa: E731
    rerank = {**means("re-ranked"), **stds("re-ranked")} if "re-ranked" in stage else None
    return {**means("plain"), **stds("plain"), "rerank": rerank}


def run_ablation(base, data, settings=SETTING_IDS, strategy=None, seeds=1):
    """Runs `settings` in order (skipping finished ones) and writes table1.md / table1.json after each.

    With `seeds` > 1 each setting trains that many seeds and the tables show mean ± std.

    Returns:
        dict with `table` (the JSON table), `markdown`, `ran` (ids trained now) and `skipped`.
    """
    settings = parse_settings(settings if isinstance(settings, str) else ",".join(settings))
    # One strategy for all settings (a process can only set up multi-worker collectives once).
    strategy = strategy or distribute.build_strategy(base.strategy)
    chief = distribute.is_chief(strategy)
    os.makedirs(base.model_dir, exist_ok=True)
    for sid in settings:  # a mismatch stops the run before any training
        finished_result(setting_config(base, sid), seeds)
    results, ran, skipped = {}, [], []
    for sid in settings:
        results[sid], trained = run_setting(base, sid, data, strategy=strategy, seeds=seeds)
        (ran if trained else skipped).append(sid)
        markdown, table = build_tables(base, settings, results, data_name(base, data))
        if chief:
            write_atomically(os.path.join(base.model_dir, "table1.md"), markdown)
            write_json(os.path.join(base.model_dir, "table1.json"), table)
    if base.verbose and chief:
        print(f"\n{markdown}\nTables: {os.path.join(base.model_dir, 'table1.md')} and table1.json")
    return {"table": table, "markdown": markdown, "ran": ran, "skipped": skipped}


def run_table1(base, settings, demo_cache_dir=None, seeds=1):
    """`python -m trainers.ablation`: the Table 1 settings on one dataset (each over `seeds` seeds)."""
    # The strategy first: a multi-worker one must configure collective ops before any TF op runs
    # (the image check of `load_reid_data` does run some).
    strategy = distribute.build_strategy(base.strategy)
    return run_ablation(base, load_reid_data(base, demo_cache_dir), settings, strategy=strategy, seeds=seeds)


def data_name(base, data):
    return "demo (synthetic, Market-1501 layout)" if base.dataset == "demo" else getattr(data, "name", base.dataset)

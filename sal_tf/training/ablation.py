"""Table 1 ablation (paper §4.3): each setting trained like the main trainer, tabulated by mAP / Rank-1.

`SETTINGS` (`sal_tf/training/table1.py`) is our reading of Table 1 (BUILD.md "Table 1 ablation" explains it: the extracted table
lost most check marks; the text fixes them). Settings without DIL are plain ResNet50 — no stage6,
no multi-level feature — since stage6 exists to undo dilation's gridding (§3.1); the FC-1024
embedding stays in every setting. Each setting trains its `TrainConfig.stages()` (softmax only →
stage 1; softmax + metric → stage 1 then stage 2 from it; metric only → stage 2 from the backbone
initialisation); everything else comes from the base config.

Layout under the base `model_dir`:

    setting_<id>/                       a normal trainer model_dir (config.json, stage*.keras, results.json)
    setting_<id>/setting_result.json    the setting's final mAP / Rank-1 (marks it finished)
    table1.md, table1.json              the table so far, beside the paper's numbers

A setting whose `setting_result.json` holds the same configuration is not rerun; an interrupted
one resumes (finished stages are skipped, checkpoints restored).
"""

import dataclasses
import gc
import json
import os

import keras

from sal_tf.training import distribute
from sal_tf.training.ablation_report import build_tables
from sal_tf.training.experiment import Experiment
from sal_tf.training.table1 import SETTING_IDS, SETTINGS, SWITCHES
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
    """The `TrainConfig` of setting `sid`: the base config with the setting's switches, all its stages."""
    switches = {k: SETTINGS[sid][k] for k in SWITCHES}
    return dataclasses.replace(base, model_dir=os.path.join(base.model_dir, f"setting_{sid}"), stage="all", **switches)


def finished_result(config):
    """The stored result of a setting run with `config`, or None when it has not finished.

    Raises:
        ConfigMismatch: the stored result was produced with another configuration.
    """
    path = os.path.join(config.model_dir, RESULT_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        stored = json.load(f)
    config.check_same_as(stored.get("config", {}), f"{path} was produced")
    return stored


def run_setting(base, sid, data, strategy=None):
    """Trains (or resumes) one setting and writes its `setting_result.json`. Returns (result, ran)."""
    config = setting_config(base, sid)
    done = finished_result(config)
    if done is not None:
        if base.verbose:
            print(f"Table 1 setting {sid}: already finished ({os.path.join(config.model_dir, RESULT_FILE)}).")
        return done, False
    if base.verbose:
        switches = " ".join(f"{k}={SETTINGS[sid][k]}" for k in SWITCHES)
        print(f"=== Table 1 setting {sid}: {switches} → {config.model_dir}")
    experiment = Experiment(config, ReIDTask(config, data), strategy=strategy)
    final = experiment.run()[config.stages()[-1].name]
    result = {
        "setting": sid,
        **{k: SETTINGS[sid][k] for k in SWITCHES},
        "stages": [s.number for s in config.stages()],
        **{k: final.get(k) for k in ("mAP", "rank1", "rank5")},
        "rerank": {k: final["rerank"][k] for k in ("mAP", "rank1")} if "rerank" in final else None,
        "config": config.to_dict(),
    }
    if experiment.chief:
        write_json(os.path.join(config.model_dir, RESULT_FILE), result)
    del experiment
    keras.backend.clear_session()
    gc.collect()
    return result, True


def run_ablation(base, data, settings=SETTING_IDS, strategy=None):
    """Runs `settings` in order (skipping finished ones) and writes table1.md / table1.json after each.

    Returns:
        dict with `table` (the JSON table), `markdown`, `ran` (ids trained now) and `skipped`.
    """
    settings = parse_settings(settings if isinstance(settings, str) else ",".join(settings))
    # One strategy for all settings (a process can only set up multi-worker collectives once).
    strategy = strategy or distribute.build_strategy(base.strategy)
    chief = distribute.is_chief(strategy)
    os.makedirs(base.model_dir, exist_ok=True)
    for sid in settings:  # a mismatch stops the run before any training
        finished_result(setting_config(base, sid))
    results, ran, skipped = {}, [], []
    for sid in settings:
        results[sid], trained = run_setting(base, sid, data, strategy=strategy)
        (ran if trained else skipped).append(sid)
        markdown, table = build_tables(base, settings, results, data_name(base, data))
        if chief:
            write_atomically(os.path.join(base.model_dir, "table1.md"), markdown)
            write_json(os.path.join(base.model_dir, "table1.json"), table)
    if base.verbose and chief:
        print(f"\n{markdown}\nTables: {os.path.join(base.model_dir, 'table1.md')} and table1.json")
    return {"table": table, "markdown": markdown, "ran": ran, "skipped": skipped}


def data_name(base, data):
    return "demo (synthetic, Market-1501 layout)" if base.dataset == "demo" else getattr(data, "name", base.dataset)

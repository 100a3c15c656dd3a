"""Table 1 ablation runner (paper §4.3): trains each setting and tabulates mAP / Rank-1.

Our reading of Table 1 (the extracted table lost most check marks; the text fixes them:
"setting 1(3) and 4(5)" add DIL + multi-level, "setting 5, 8" add SAC, "1(6) vs 2(7)" swap
softmax for quadruplet, "3 vs 3(T)" swap quadruplet for triplet):

    | setting | loss                 | DIL | multi-level | SAC | paper mAP / R1 |
    | 1       | softmax              |  –  |      –      |  –  | 68.5 / 83.7    |
    | 2       | quadruplet           |  –  |      –      |  –  | 60.6 / 77.2    |
    | 3       | softmax + quadruplet |  –  |      –      |  –  | 73.5 / 87.3    |
    | 3(T)    | softmax + triplet    |  –  |      –      |  –  | 71.6 / 84.3    |
    | 4       | softmax              |  ✓  |      ✓      |  –  | 72.7 / 85.6    |
    | 5       | softmax + quadruplet |  ✓  |      ✓      |  –  | 78.4 / 90.5    |
    | 6       | softmax              |  ✓  |      ✓      |  ✓  | 76.7 / 88.2    |
    | 7       | quadruplet           |  ✓  |      ✓      |  ✓  | 66.0 / 80.3    |
    | 8       | softmax + quadruplet |  ✓  |      ✓      |  ✓  | 81.6 / 92.8    |

Each setting trains like the main trainer (`TrainConfig.stages_to_run()`): softmax only →
stage 1; a metric loss with softmax → stage 1 (softmax, + SAC) then stage 2 (the full loss)
from the stage-1 weights; metric only → stage 2 only, from the backbone initialisation.
Everything else (epochs, lr, preset, data, strategy, ...) comes from the base config.

Layout under the base `model_dir`:

    setting_<id>/            a normal trainer model_dir (config.json, stage*.keras, results.json)
    setting_<id>/setting_result.json   the setting's final mAP / Rank-1 (marks it finished)
    table1.md, table1.json   the table so far, beside the paper's numbers

A setting whose `setting_result.json` holds the same configuration is not rerun; an
interrupted one resumes (the trainer skips finished stages and restores checkpoints).
"""

import dataclasses
import gc
import json
import os

import keras

from sal_tf.training import distribute
from sal_tf.training.config import TrainConfig
from sal_tf.training.trainer import ReIDTrainer, _atomic_write, _jsonable

SETTINGS = {
    "1": dict(loss="softmax", dilation=False, multi_level=False, sac=False, paper=(68.5, 83.7)),
    "2": dict(loss="quadruplet", dilation=False, multi_level=False, sac=False, paper=(60.6, 77.2)),
    "3": dict(loss="softmax+quadruplet", dilation=False, multi_level=False, sac=False, paper=(73.5, 87.3)),
    "3T": dict(loss="softmax+triplet", dilation=False, multi_level=False, sac=False, paper=(71.6, 84.3)),
    "4": dict(loss="softmax", dilation=True, multi_level=True, sac=False, paper=(72.7, 85.6)),
    "5": dict(loss="softmax+quadruplet", dilation=True, multi_level=True, sac=False, paper=(78.4, 90.5)),
    "6": dict(loss="softmax", dilation=True, multi_level=True, sac=True, paper=(76.7, 88.2)),
    "7": dict(loss="quadruplet", dilation=True, multi_level=True, sac=True, paper=(66.0, 80.3)),
    "8": dict(loss="softmax+quadruplet", dilation=True, multi_level=True, sac=True, paper=(81.6, 92.8)),
}
SETTING_IDS = tuple(SETTINGS)
RESULT_FILE = "setting_result.json"
# The paper's Table 1 is on Market-1501; other datasets get no paper column.
PAPER_DATASETS = ("market1501", "demo")  # the demo data has the Market-1501 layout


def parse_settings(text):
    """'1,3,8' / '3t' / 'all' → ordered list of setting ids; a clear error for unknown ids."""
    if text in (None, "", "all"):
        return list(SETTING_IDS)
    ids = []
    for raw in str(text).split(","):
        sid = raw.strip().upper().replace("(T)", "T")
        if not sid:
            continue
        if sid not in SETTINGS:
            raise ValueError(
                f"--settings: unknown Table 1 setting {raw.strip()!r}; expected a comma-separated "
                f"subset of {','.join(SETTING_IDS)} (or 'all')."
            )
        if sid not in ids:
            ids.append(sid)
    if not ids:
        raise ValueError(f"--settings={text!r} names no setting; expected e.g. 1,3,8 or all.")
    return ids


def setting_config(base: TrainConfig, sid):
    """The `TrainConfig` of setting `sid`: the base config with the setting's switches, both stages."""
    s = SETTINGS[sid]
    return dataclasses.replace(
        base,
        model_dir=os.path.join(base.model_dir, f"setting_{sid}"),
        loss=s["loss"],
        dilation=s["dilation"],
        multi_level=s["multi_level"],
        sac=s["sac"],
        stage="all",
    )


def _final_key(config):
    return f"stage{config.stages_to_run()[-1]}"


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def finished_result(config):
    """The stored result of a setting run with `config`, or None when it has not finished.

    Raises:
        ValueError: the stored result was produced with another configuration.
    """
    path = os.path.join(config.model_dir, RESULT_FILE)
    if not os.path.exists(path):
        return None
    stored = _read_json(path)
    diffs = config.differences(stored.get("config", {}))
    if diffs:
        lines = "\n".join(f"  {k}: stored {a!r}, now {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(
            f"{path} was produced with a different configuration:\n{lines}\n"
            "Use another --model_dir, or rerun with the stored settings."
        )
    return stored


def run_setting(base, sid, data, strategy=None, trainer_cls=ReIDTrainer):
    """Trains (or resumes) one setting and writes its `setting_result.json`. Returns (result, ran)."""
    config = setting_config(base, sid)
    done = finished_result(config)
    if done is not None:
        if base.verbose:
            print(f"Table 1 setting {sid}: already finished ({os.path.join(config.model_dir, RESULT_FILE)}); skipping.")
        return done, False
    if base.verbose:
        s = SETTINGS[sid]
        print(
            f"=== Table 1 setting {sid}: loss={s['loss']} DIL={s['dilation']} multi-level={s['multi_level']} "
            f"SAC={s['sac']} → {config.model_dir}"
        )
    trainer = trainer_cls(config, data, strategy=strategy)
    results = trainer.run()
    final = results[_final_key(config)]
    result = {
        "setting": sid,
        **{k: SETTINGS[sid][k] for k in ("loss", "dilation", "multi_level", "sac")},
        "stages": config.stages_to_run(),
        "mAP": final["mAP"],
        "rank1": final["rank1"],
        "rank5": final.get("rank5"),
        "rerank": {k: final["rerank"][k] for k in ("mAP", "rank1")} if "rerank" in final else None,
        "config": config.to_dict(),
    }
    if trainer.chief:
        _atomic_write(os.path.join(config.model_dir, RESULT_FILE), json.dumps(_jsonable(result), indent=2))
    del trainer
    keras.backend.clear_session()
    gc.collect()
    return result, True


def _check(flag):
    return "✓" if flag else "–"


def _pct(value):
    return "–" if value is None else f"{100 * value:.1f}"


def build_tables(base, settings, results, dataset_name):
    """(markdown text, json dict) of the settings in order; unfinished ones are marked pending."""
    with_paper = base.dataset in PAPER_DATASETS
    rows = []
    for sid in settings:
        s, r = SETTINGS[sid], results.get(sid)
        rows.append(
            {
                "setting": sid if sid != "3T" else "3(T)",
                "loss": s["loss"],
                "dilation": s["dilation"],
                "multi_level": s["multi_level"],
                "sac": s["sac"],
                "mAP": None if r is None else 100 * r["mAP"],
                "rank1": None if r is None else 100 * r["rank1"],
                "rerank_mAP": None if not (r and r.get("rerank")) else 100 * r["rerank"]["mAP"],
                "rerank_rank1": None if not (r and r.get("rerank")) else 100 * r["rerank"]["rank1"],
                "paper_mAP": s["paper"][0] if with_paper else None,
                "paper_rank1": s["paper"][1] if with_paper else None,
                "status": "pending" if r is None else "done",
            }
        )
    s1, s2 = base.stage1, base.stage2
    notes = (
        f"dataset: {dataset_name}; preset: {base.preset}; backbone: {base.backbone_weights}; "
        f"stage 1: {s1.epochs} epochs, lr {s1.learning_rate}, batch {s1.batch_size}; "
        f"stage 2: {s2.epochs} epochs, lr {s2.learning_rate}, P×K {s2.num_ids}×{s2.num_instances}"
        + (f"; at most {base.max_steps_per_epoch} steps/epoch" if base.max_steps_per_epoch else "")
    )
    lines = [
        f"Table 1 ablation ({notes}). mAP / Rank-1 in %, single query, no re-ranking"
        + (
            "; paper: Market-1501, ResNet50, ImageNet init."
            if with_paper
            else "; the paper reports Table 1 on Market-1501 only."
        ),
        "",
        "| setting | loss | DIL | multi-level | SAC | mAP | Rank-1 | paper mAP | paper Rank-1 |",
        "| --- | --- | :-: | :-: | :-: | --: | --: | --: | --: |",
    ]
    for row in rows:
        ours = (
            ("pending", "pending") if row["status"] == "pending" else (_pct(row["mAP"] / 100), _pct(row["rank1"] / 100))
        )
        paper = (f"{row['paper_mAP']:.1f}", f"{row['paper_rank1']:.1f}") if with_paper else ("–", "–")
        lines.append(
            f"| {row['setting']} | {row['loss'].replace('+', ' + ')} | {_check(row['dilation'])} | "
            f"{_check(row['multi_level'])} | {_check(row['sac'])} | {ours[0]} | {ours[1]} | "
            f"{paper[0]} | {paper[1]} |"
        )
    table = {"dataset": dataset_name, "notes": notes, "settings": rows}
    return "\n".join(lines) + "\n", table


def run_ablation(base: TrainConfig, data, settings=SETTING_IDS, strategy=None, trainer_cls=ReIDTrainer):
    """Runs `settings` in order (skipping finished ones) and writes table1.md / table1.json.

    The tables are rewritten after every setting, so partial progress is visible.

    Returns:
        dict with `table` (the JSON table), `markdown`, `ran` (ids trained now) and `skipped`.
    """
    settings = parse_settings(",".join(settings) if not isinstance(settings, str) else settings)
    # One strategy for all settings (a process can only set up multi-worker collectives once).
    strategy = strategy or distribute.build_strategy(base.strategy)
    chief = distribute.is_chief(strategy)
    os.makedirs(base.model_dir, exist_ok=True)
    dataset_name = (
        "demo (synthetic, Market-1501 layout)" if base.dataset == "demo" else getattr(data, "name", base.dataset)
    )
    results, ran, skipped = {}, [], []
    # Validate every finished setting first, so a mismatch stops the run before any training.
    for sid in settings:
        finished_result(setting_config(base, sid))
    for sid in settings:
        result, trained = run_setting(base, sid, data, strategy=strategy, trainer_cls=trainer_cls)
        results[sid] = result
        (ran if trained else skipped).append(sid)
        markdown, table = build_tables(base, settings, results, dataset_name)
        if chief:
            _atomic_write(os.path.join(base.model_dir, "table1.md"), markdown)
            _atomic_write(os.path.join(base.model_dir, "table1.json"), json.dumps(_jsonable(table), indent=2))
    if base.verbose and chief:
        print(f"\n{markdown}\nTables: {os.path.join(base.model_dir, 'table1.md')} and table1.json")
    return {"table": table, "markdown": markdown, "ran": ran, "skipped": skipped}


# === Command line (trainers/ablation.py) ===
# Demo defaults of the ablation (no --data_dir): the tiny preset on the demo data with half
# of the single demo run's epochs per setting (stage 1: 12 epochs, stage 2: 5 epochs; the
# stage-1 warm-up and lr-decay epochs scale by the same factor), no untrained evaluation.
# The 9 settings (7 stage-1 runs, 6 stage-2 runs) then take ~15-20 minutes on 2 CPU cores.
# Explicit flags win.
ABLATION_DEMO = dict(stage1_epochs=12, stage2_epochs=5)
DATASET_ALIASES = {
    "market": "market1501",
    "duke": "dukemtmc",
    "market1501": "market1501",
    "dukemtmc": "dukemtmc",
    "custom": "custom",
}


def define_flags():
    """The trainer's flags (`sal_tf.training.cli`), with `--dataset=market|duke` and `--settings`."""
    from absl import flags

    from sal_tf.training import cli

    cli.define_flags(default_dataset="market1501")
    delattr(flags.FLAGS, "dataset")  # redefined with the short names the ablation takes
    flags.DEFINE_enum(
        "dataset",
        "market",
        sorted(DATASET_ALIASES),
        "Layout of --data_dir: market (Market-1501), duke (DukeMTMC-reID) or custom.",
    )
    flags.DEFINE_string(
        "settings",
        "all",
        f"Comma-separated Table 1 settings to run, of {','.join(SETTING_IDS)} "
        "(or all). --loss/--dilation/--multi_level/--sac are set per setting.",
    )


def config_from_flags():
    """The base `TrainConfig` of the ablation (per-setting switches are applied later)."""
    from absl import flags

    from sal_tf.training import cli

    f = flags.FLAGS
    canonical = DATASET_ALIASES[f.dataset]
    demo = not f.data_dir
    f.dataset = canonical  # cli.config_from_flags reads the canonical layout name
    try:
        base = cli.config_from_flags()
    finally:
        f.dataset = [k for k, v in DATASET_ALIASES.items() if v == canonical][0]
    changes = {}
    if not f.model_dir:
        changes["model_dir"] = os.path.join("runs", "ablation_" + ("demo" if demo else canonical))
    if demo:
        s1, s2 = dataclasses.replace(base.stage1), dataclasses.replace(base.stage2)
        if f.stage1_epochs is None:
            scale = ABLATION_DEMO["stage1_epochs"] / max(1, s1.epochs)
            s1.epochs = ABLATION_DEMO["stage1_epochs"]
            if f.lr_decay_epochs is None:
                s1.decay_every_epochs = max(1, round(s1.decay_every_epochs * scale))
            if getattr(f, "warmup_epochs", None) is None:
                s1.warmup_epochs = round(s1.warmup_epochs * scale)
        if f.stage2_epochs is None:
            s2.epochs = ABLATION_DEMO["stage2_epochs"]
        changes.update(stage1=s1, stage2=s2)
        if f.eval_untrained is None:
            changes["eval_untrained"] = False
    return dataclasses.replace(base, **changes)


def main(argv):
    """Entry of `python -m trainers.ablation`. Exit status 0 done, 2 bad flags/data, 3 diverged."""
    del argv
    import sys

    from absl import flags

    from sal_tf.training import cli
    from sal_tf.training.trainer import ConfigMismatch, TrainingDiverged

    try:
        settings = parse_settings(flags.FLAGS.settings)
        base = config_from_flags()
        data = cli.load_data(base, verbose=base.verbose > 0)
        run_ablation(base, data, settings)
    except (ConfigMismatch, FileNotFoundError, ValueError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3 if isinstance(e, TrainingDiverged) else 2)

"""One run over several seeds (`--seeds=N`): `<model_dir>/seed_<s>/` each, and their mean ± std.

Seeds are `seed, seed + 1, …, seed + N − 1` (`--seed` is the first). Each seed's folder is a normal
trainer `model_dir` (config.json, checkpoints, stage*.keras, results.json), so a finished seed is not
retrained (its stored results are reused) and an interrupted one resumes. After every seed,
`<model_dir>/seeds_summary.json` and `seeds_summary.md` hold the per-seed numbers and, per stage,
mean ± std (sample standard deviation, n − 1), min and max of mAP / Rank-1 / mINP, plain and
re-ranked.
"""

import dataclasses
import gc
import math
import os

from sal_tf.utils import write_atomically, write_json

SUMMARY_JSON, SUMMARY_MD = "seeds_summary.json", "seeds_summary.md"
METRICS = ("mAP", "rank1", "mINP")
METRIC_NAMES = {"mAP": "mAP", "rank1": "Rank-1", "mINP": "mINP"}
STAGE_KEYS = ("untrained", "stage1", "stage2")
VARIANTS = (("plain", None), ("re-ranked", "rerank"))


def seed_list(first, num_seeds):
    if num_seeds < 1:
        raise ValueError(f"--seeds must be >= 1. Received: --seeds={num_seeds}")
    return [first + i for i in range(num_seeds)]


def seed_config(config, seed):
    """The config of one seed: its own `seed_<s>/` folder under the run's model_dir."""
    return dataclasses.replace(config, seed=seed, model_dir=os.path.join(config.model_dir, f"seed_{seed}"))


def spread(values):
    """{mean, std, min, max, n} of floats; std is the sample standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": n}


def _metrics(result, variant):
    source = result if variant is None else result.get(variant)
    return None if not source else {k: float(source[k]) for k in METRICS}


def summarize_seeds(per_seed):
    """Mean ± std over seeds of each stage's metrics.

    Args:
        per_seed: {seed: results dict of that seed's run (`results.json`)}.

    Returns:
        {"seeds": [...], "stages": {stage: {"plain"|"re-ranked": {metric: spread}}}, "per_seed": {...}}
        with metrics as fractions (0..1); a stage or variant missing from any seed is left out.
    """
    seeds = sorted(per_seed)
    table, rows = {}, {str(s): {} for s in seeds}
    for stage in STAGE_KEYS:
        for name, variant in VARIANTS:
            values = [_metrics(per_seed[s].get(stage) or {}, variant) for s in seeds]
            if not seeds or any(v is None for v in values):
                continue
            table.setdefault(stage, {})[name] = {k: spread([v[k] for v in values]) for k in METRICS}
            for s, v in zip(seeds, values):
                rows[str(s)].setdefault(stage, {})[name] = v
    return {"seeds": seeds, "stages": table, "per_seed": rows}


def format_spread(s, scale=100.0):
    """'74.3 ± 1.2 (72.9–75.4)' of a `spread` (in %)."""
    return f"{scale * s['mean']:.1f} ± {scale * s['std']:.1f} ({scale * s['min']:.1f}–{scale * s['max']:.1f})"


def format_seeds_table(summary, title=""):
    """Markdown: per stage and variant, mean ± std (min–max) of each metric in %."""
    n = len(summary["seeds"])
    head = title or "Spread over seeds"
    lines = [
        f"{head}: seeds {', '.join(str(s) for s in summary['seeds'])}; mean ± sample std (min–max) over {n} "
        "seed(s), in %.",
        "",
        "| stage | evaluation | " + " | ".join(METRIC_NAMES[k] for k in METRICS) + " |",
        "| --- | --- | " + " | ".join("--:" for _ in METRICS) + " |",
    ]
    for stage, variants in summary["stages"].items():
        for name, metrics in variants.items():
            lines.append(f"| {stage} | {name} | " + " | ".join(format_spread(metrics[k]) for k in METRICS) + " |")
    return "\n".join(lines) + "\n"


def write_summary(model_dir, summary, title=""):
    markdown = format_seeds_table(summary, title)
    write_atomically(os.path.join(model_dir, SUMMARY_MD), markdown)
    write_json(os.path.join(model_dir, SUMMARY_JSON), summary)
    return markdown


def run_seeds(config, make_task, num_seeds, strategy=None):
    """Trains (or reuses) `num_seeds` seeds of `config`; writes and returns the summary.

    Args:
        config: the run's `TrainConfig`; its `seed` is the first seed, its `model_dir` holds `seed_<s>/`.
        make_task: `config → task` (e.g. `lambda c: ReIDTask(c, data)`).
        strategy: one `tf.distribute` strategy for every seed (built from the config when None).
    """
    import keras

    from sal_tf.training import distribute
    from sal_tf.training.experiment import Experiment

    strategy = strategy or distribute.build_strategy(config.strategy)
    per_seed = {}
    for seed in seed_list(config.seed, num_seeds):
        cfg = seed_config(config, seed)
        if config.verbose:
            print(f"=== seed {seed} ({len(per_seed) + 1}/{num_seeds}) → {cfg.model_dir}")
        experiment = Experiment(cfg, make_task(cfg), strategy=strategy)
        per_seed[seed] = experiment.run()
        chief = experiment.chief
        del experiment
        keras.backend.clear_session()
        gc.collect()
        summary = summarize_seeds(per_seed)
        if chief:
            markdown = write_summary(config.model_dir, summary, f"{config.recipe} recipe on {config.dataset}")
    if config.verbose and chief:
        print(f"\n{markdown}\nSummary: {os.path.join(config.model_dir, SUMMARY_MD)} and {SUMMARY_JSON}")
    return summary

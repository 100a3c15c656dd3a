"""`python -m trainers.paper`: the paper's Tables 2 and 3 in one command.

Each dataset (Market-1501, DukeMTMC-reID) trains in `<model_dir>/<dataset>/` with the given
config (the paper preset and both stages by default), is evaluated with and without re-ranking,
and `<model_dir>/paper_tables.md` / `.json` are rewritten after each dataset with the paper's rows
beside the measured ones (`sal_tf/experiments/paper_tables.py`). Each dataset folder is a normal trainer
`model_dir` (with `--seeds=N`, one `seed_<s>/` per seed), so a finished dataset or stage is not
retrained and an interrupted one resumes.
"""

import dataclasses
import gc
import os

from sal_tf.experiments.paper_tables import REPORT_JSON, REPORT_MD, build_report
from sal_tf.experiments.report_notes import schedule_notes
from sal_tf.training.seeds import run_seeds, summarize_seeds
from sal_tf.utils import write_atomically, write_json


def dataset_config(base, dataset, data_dir):
    """The run of one dataset: its folder `<model_dir>/<dataset>/`, both stages."""
    return dataclasses.replace(
        base, dataset=dataset, data_dir=data_dir, model_dir=os.path.join(base.model_dir, dataset), stage="all"
    )


def _notes(base, num_seeds):
    return f"recipe: {base.recipe}; {schedule_notes(base)}; {num_seeds} seed(s) from {base.seed}"


def _train_one(config, num_seeds, strategy):
    """The seeds summary of one dataset's run (trained, resumed or reused)."""
    import keras

    from sal_tf.training.commands import load_reid_data
    from sal_tf.training.experiment import Experiment
    from sal_tf.training.tasks import ReIDTask

    data = load_reid_data(config)
    if num_seeds > 1:
        return run_seeds(config, lambda c: ReIDTask(c, data), num_seeds, strategy=strategy)
    results = Experiment(config, ReIDTask(config, data), strategy=strategy).run()
    keras.backend.clear_session()
    gc.collect()
    return summarize_seeds({config.seed: results})


def run_paper(base, data_dirs, num_seeds=1, strategy=None):
    """Trains each dataset of `data_dirs` ({dataset id: folder}) and writes the report.

    Returns:
        dict with `markdown` and `json` (the report) and `summaries` ({dataset: seeds summary}).
    """
    from sal_tf.training import distribute

    strategy = strategy or distribute.build_strategy(base.strategy)
    chief = distribute.is_chief(strategy)
    datasets, summaries = list(data_dirs), {}
    notes = _notes(base, num_seeds)
    for dataset in datasets:
        config = dataset_config(base, dataset, data_dirs[dataset])
        if base.verbose:
            print(f"=== {dataset} ({data_dirs[dataset]}) → {config.model_dir}")
        summaries[dataset] = _train_one(config, num_seeds, strategy)
        markdown, table = build_report(datasets, summaries, notes)
        if chief:
            os.makedirs(base.model_dir, exist_ok=True)
            write_atomically(os.path.join(base.model_dir, REPORT_MD), markdown)
            write_json(os.path.join(base.model_dir, REPORT_JSON), table)
    if base.verbose and chief:
        print(f"\n{markdown}\nReport: {os.path.join(base.model_dir, REPORT_MD)} and {REPORT_JSON}")
    return {"markdown": markdown, "json": table, "summaries": summaries}

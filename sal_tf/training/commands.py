"""What the training entry points call once their flags are a config: load data, run, report."""

from sal_tf.evaluation.reid import format_results
from sal_tf.training import distribute
from sal_tf.training.experiment import Experiment
from sal_tf.training.tasks import CifarTask, ReIDTask
from sal_tf.training.tasks.cifar import table4_summary


def load_reid_data(config, demo_cache_dir=None):
    """The checked `ReIDDataset` of a config (the demo dataset is generated once into the cache)."""
    from sal_tf.data import load_dataset

    return load_dataset(
        config.dataset,
        config.data_dir,
        verbose=config.verbose > 0,
        drop_bad_eval_images=config.drop_bad_eval_images,
        cache_dir=demo_cache_dir,
    )


def train_reid(config, demo_cache_dir=None, seeds=1):
    """`python -m trainers.market|duke`: trains the stages of `config` and prints the results.

    With `seeds` > 1, trains that many seeds (`sal_tf.training.seeds`) and returns their summary.
    """
    # The strategy first: a multi-worker one must configure collective ops before any TF op runs
    # (the image check does run some).
    strategy = distribute.build_strategy(config.strategy)
    data = load_reid_data(config, demo_cache_dir)
    if seeds > 1:
        from sal_tf.training.seeds import run_seeds

        return run_seeds(config, lambda c: ReIDTask(c, data), seeds, strategy=strategy)
    experiment = Experiment(config, ReIDTask(config, data), strategy=strategy)
    results = experiment.run()
    if config.verbose and experiment.chief:
        print(f"\nResults ({experiment.results_path}):")
        for key in ("untrained", "stage1", "stage2"):
            if key in results:
                print(f"[{key}]\n{format_results(results[key])}")
        for key in ("stage1", "stage2"):
            if "train_seconds" in results.get(key, {}):
                print(f"{key} training time: {results[key]['train_seconds']:.0f} s")
    return results


def train_cifar(config, data=None):
    """`python -m trainers.cifar100`: trains, evaluates and prints the Table 4 comparison."""
    from sal_tf.data.cifar100 import load_cifar100

    data = data or load_cifar100(config.data_dir or None, verbose=config.verbose > 0)
    experiment = Experiment(config, CifarTask(config, data))
    results = experiment.run()
    if "stage1" in results:
        results["table4"] = table4_summary(config, results)
        experiment.save_results(results)
        if experiment.chief:
            t = results["table4"]
            paper = "–" if t["paper_test_error_percent"] is None else f"{t['paper_test_error_percent']:.2f} %"
            print(
                f"\n{t['row']}: test error {t['test_error_percent']:.2f} % on {t['num_test_images']} images "
                f"(paper: {paper}). Results: {experiment.results_path}"
            )
    return results

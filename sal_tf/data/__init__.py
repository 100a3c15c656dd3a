"""Re-ID data: dataset parsers, the synthetic demo dataset, the image check and `tf.data` pipelines."""

import os

from sal_tf.data.custom import load_custom
from sal_tf.data.dukemtmc import load_dukemtmc
from sal_tf.data.market1501 import load_market1501
from sal_tf.data.records import Record, ReIDDataset

__all__ = ["DATASETS", "LOADERS", "Record", "ReIDDataset", "demo_cache_dir", "load_dataset"]

LOADERS = {
    "market1501": load_market1501,
    "dukemtmc": load_dukemtmc,
    "custom": load_custom,
}
DATASETS = (*LOADERS, "demo")


def demo_cache_dir(cache_dir=None):
    """Where the demo dataset is generated: `cache_dir`, else $SAL_TF_CACHE, else ~/.cache/sal_tf."""
    return cache_dir or os.environ.get("SAL_TF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sal_tf")


def load_dataset(name, root=None, verbose=True, check_images=True, drop_bad_eval_images=False, cache_dir=None):
    """Loads dataset `name` (`DATASETS`) from `root` and returns a checked `ReIDDataset`.

    `"demo"` generates the synthetic Market-1501-layout dataset once under `demo_cache_dir(cache_dir)`
    (`root` is ignored). With `check_images`, every image is decoded once (`sal_tf.data.image_check`):
    bad train images are dropped, bad query/gallery images are an error unless `drop_bad_eval_images`.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {'|'.join(DATASETS)}.")
    if name == "demo":
        from sal_tf.data.demo import ensure_demo_dataset

        root = ensure_demo_dataset(os.path.join(demo_cache_dir(cache_dir), "demo"), seed=0)
        if verbose:
            print(f"No --data_dir given: using the demo dataset at {root}")
        name = "market1501"
    dataset = LOADERS[name](root, verbose=False)
    if check_images:
        from sal_tf.data.image_check import check_dataset

        dataset = check_dataset(dataset, drop_bad_eval_images=drop_bad_eval_images, verbose=verbose)
    if verbose:
        print(dataset.summary())
    return dataset

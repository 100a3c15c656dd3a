"""Re-ID data: dataset parsers, the synthetic demo dataset, the image check and `tf.data` pipelines.

* Parsers (TF-free, imported with the package): `load_dataset`, `load_market1501`, `load_dukemtmc`,
  `load_custom` → `ReIDDataset` of `Record`s; `DATASETS`, `DATASET_ALIASES`, `dataset_name`.
* Resolved on first use, so `import sal_tf.data` imports neither TensorFlow nor numpy:
  the re-ID pipelines (`build_train_dataset`, `build_query_gallery_datasets`, `build_eval_dataset`,
  `steps_per_epoch`; `sal_tf/data/pipelines.py`), the epoch samplers (`SAMPLINGS`, ...), the demo
  dataset, the image check and CIFAR-100 (`load_cifar100`; its pipelines: `sal_tf.data.cifar100_pipelines`).
"""

import os

from sal_tf.data.custom import load_custom
from sal_tf.data.dukemtmc import load_dukemtmc
from sal_tf.data.market1501 import load_market1501
from sal_tf.data.records import DISTRACTOR_PID, JUNK_PID, Record, ReIDDataset
from sal_tf.utils.lazy import lazy_module_attrs

LOADERS = {
    "market1501": load_market1501,
    "dukemtmc": load_dukemtmc,
    "custom": load_custom,
}
DATASETS = (*LOADERS, "demo")
DATASET_ALIASES = {"market": "market1501", "duke": "dukemtmc"}  # short names the command lines accept
LAYOUTS = (*LOADERS, *DATASET_ALIASES)  # what a --data_dir can hold, by name or alias

_LAZY = {
    "build_eval_dataset": "sal_tf.data.pipelines",
    "build_query_gallery_datasets": "sal_tf.data.pipelines",
    "build_train_dataset": "sal_tf.data.pipelines",
    "steps_per_epoch": "sal_tf.data.pipelines",
    "SAMPLINGS": "sal_tf.data.samplers",
    "pk_epoch_indices": "sal_tf.data.samplers",
    "random_epoch_indices": "sal_tf.data.samplers",
    "ensure_demo_dataset": "sal_tf.data.demo",
    "generate_demo_dataset": "sal_tf.data.demo",
    "check_dataset": "sal_tf.data.image_check",
    "Cifar100Data": "sal_tf.data.cifar100",
    "load_cifar100": "sal_tf.data.cifar100",
}

__all__ = [  # the parsers above and the lazy names
    "Cifar100Data",
    "DATASETS",
    "DATASET_ALIASES",
    "DISTRACTOR_PID",
    "JUNK_PID",
    "LAYOUTS",
    "LOADERS",
    "ReIDDataset",
    "Record",
    "SAMPLINGS",
    "build_eval_dataset",
    "build_query_gallery_datasets",
    "build_train_dataset",
    "check_dataset",
    "dataset_name",
    "demo_cache_dir",
    "ensure_demo_dataset",
    "generate_demo_dataset",
    "load_cifar100",
    "load_custom",
    "load_dataset",
    "load_dukemtmc",
    "load_market1501",
    "pk_epoch_indices",
    "random_epoch_indices",
    "steps_per_epoch",
]


__getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__)


def dataset_name(name):
    """The dataset a name or alias (`DATASET_ALIASES`) means: "duke" → "dukemtmc"."""
    return DATASET_ALIASES.get(name, name)


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

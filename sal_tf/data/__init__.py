"""Re-ID data: dataset parsers, the synthetic demo dataset and `tf.data` pipelines (SPEC §5)."""

from sal_tf.data.custom import load_custom
from sal_tf.data.dukemtmc import load_dukemtmc
from sal_tf.data.market1501 import load_market1501
from sal_tf.data.records import Record, ReIDDataset

__all__ = ["LOADERS", "Record", "ReIDDataset", "load_dataset"]

LOADERS = {
    "market1501": load_market1501,
    "dukemtmc": load_dukemtmc,
    "custom": load_custom,
}


def load_dataset(name, root, verbose=True):
    """Loads dataset `name` (one of `LOADERS`) from `root` and returns a `ReIDDataset`."""
    if name not in LOADERS:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {sorted(LOADERS)}.")
    return LOADERS[name](root, verbose=verbose)

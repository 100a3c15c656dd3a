"""CIFAR-100 (paper §4.5, Table 4): the official python pickles, read into memory.

Source, in order:

1. `data_dir`: a `cifar-100-python` folder (or a folder that contains one) holding the official
   pickles `train`, `test` and `meta` (https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz).
   Each of `train` / `test` is a dict with `b"data"`: uint8 [N, 3072], one row per image as three
   row-major 32×32 planes R, G, B; and `b"fine_labels"`: N ints in 0..99. `meta` holds
   `b"fine_label_names"` (optional here: only used for display).
2. The `keras.datasets.cifar100` cache, when it already holds the extracted folder
   (`$KERAS_HOME` or `~/.keras`, `datasets/cifar-100-python-target/cifar-100-python` for
   Keras 3, `datasets/cifar-100-python` for older Keras). It is read with the same parser;
   nothing is ever downloaded.

Images come out as uint8 [N, 32, 32, 3] RGB; the pipelines give float32 RGB 0..255 (the model
normalises; `sal_tf.data.cifar100_pipelines`). Training epochs are deterministic for `(seed, epoch)` like the re-ID pipeline: a
numpy permutation seeded by `[seed, epoch]`, and stateless pad-4 crop / mirror draws seeded by
`fold_in([seed, epoch], position)`, so a resumed run rebuilds epoch `e` and `.skip(step)`s.
"""

import dataclasses
import os
import pickle

import numpy as np

NUM_CLASSES = 100
SPLIT_FILES = ("train", "test")
DOWNLOAD_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"


@dataclasses.dataclass
class Cifar100Data:
    """CIFAR-100 in memory.

    Attributes:
        train_images, test_images: uint8 [N, 32, 32, 3] RGB.
        train_labels, test_labels: int32 [N] fine labels 0..99.
        class_names: the 100 fine label names ("" when `meta` is missing).
        root: the `cifar-100-python` folder read.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list
    root: str
    name: str = "cifar100"

    @property
    def num_classes(self):
        return NUM_CLASSES

    def summary(self):
        return (
            f"CIFAR-100 at {self.root}: {len(self.train_labels)} train / {len(self.test_labels)} test images, "
            f"{NUM_CLASSES} classes"
        )


def read_cifar_pickle(path):
    """Reads one official CIFAR-100 split file.

    Returns:
        (uint8 [N, 32, 32, 3] RGB images, int32 [N] fine labels).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a CIFAR-100 python pickle (names the file and what was expected).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"CIFAR-100 file not found: {path} (expected the official pickle from {DOWNLOAD_URL}, extracted)."
        )
    expected = (
        'a pickled dict with b"data" (uint8 [N, 3072]: R, G, B 32×32 row-major planes per row) '
        'and b"fine_labels" (N ints in 0..99)'
    )
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # any unpickling failure: truncated, not a pickle, ...
        raise ValueError(
            f"{path} is not a readable CIFAR-100 pickle ({type(e).__name__}: {e}); expected {expected}."
        ) from None
    if not isinstance(d, dict):
        raise ValueError(f"{path} holds a {type(d).__name__}, expected {expected}.")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    missing = [k for k in ("data", "fine_labels") if k not in d]
    if missing:
        raise ValueError(f"{path} lacks the key(s) {missing} (has {sorted(d)}); expected {expected}.")
    data = np.asarray(d["data"])
    labels = np.asarray(d["fine_labels"])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise ValueError(f'{path}: b"data" is {data.dtype} {list(data.shape)}; expected {expected}.')
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f'{path}: b"fine_labels" has shape {list(labels.shape)} (dtype {labels.dtype}) for '
            f"{data.shape[0]} images; expected {expected}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{path}: fine labels span {labels.min()}..{labels.max()}; expected 0..{NUM_CLASSES - 1}.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def read_class_names(path):
    """The fine label names of a `meta` file ([] if the file is missing)."""
    if not os.path.isfile(path):
        return []
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        names = d[b"fine_label_names"] if b"fine_label_names" in d else d["fine_label_names"]
    except Exception as e:
        raise ValueError(
            f'{path} is not a CIFAR-100 meta pickle (a dict with b"fine_label_names"): {type(e).__name__}: {e}'
        ) from None
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def keras_cache_dirs():
    """Where `keras.datasets.cifar100` keeps the extracted folder, newest Keras first."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    datasets = os.path.join(base, "datasets")
    return [
        os.path.join(datasets, "cifar-100-python-target", "cifar-100-python"),
        os.path.join(datasets, "cifar-100-python"),
    ]


def _has_splits(folder):
    return all(os.path.isfile(os.path.join(folder, f)) for f in SPLIT_FILES)


def find_cifar100(data_dir=None):
    """The `cifar-100-python` folder to read: from `data_dir`, else the Keras cache.

    Raises:
        FileNotFoundError: naming `data_dir` and the Keras cache paths, and how to get the data.
    """
    if data_dir:
        for folder in (data_dir, os.path.join(data_dir, "cifar-100-python")):
            if _has_splits(folder):
                return folder
        raise FileNotFoundError(
            f"--data_dir={data_dir} is not a CIFAR-100 folder: expected the files {list(SPLIT_FILES)} (and meta) "
            f"of the official python version in it or in {os.path.join(data_dir, 'cifar-100-python')}. "
            f"Download and extract {DOWNLOAD_URL}."
        )
    for folder in keras_cache_dirs():
        if _has_splits(folder):
            return folder
    raise FileNotFoundError(
        "No CIFAR-100 data: pass --data_dir=PATH to an extracted cifar-100-python folder (files train, test, meta "
        f"from {DOWNLOAD_URL}), or fill the keras.datasets.cifar100 cache (expected at "
        f"{' or '.join(keras_cache_dirs())}; e.g. run keras.datasets.cifar100.load_data() once where there is "
        "network access). Nothing is downloaded automatically."
    )


def load_cifar100(data_dir=None, verbose=True):
    """Loads CIFAR-100 from `data_dir` or the Keras cache (see `find_cifar100`)."""
    root = find_cifar100(data_dir)
    train_images, train_labels = read_cifar_pickle(os.path.join(root, "train"))
    test_images, test_labels = read_cifar_pickle(os.path.join(root, "test"))
    if not len(train_labels) or not len(test_labels):
        raise ValueError(f"{root}: the train or test split is empty.")
    data = Cifar100Data(
        train_images, train_labels, test_images, test_labels, read_class_names(os.path.join(root, "meta")), root
    )
    if verbose:
        print(data.summary())
    return data

"""Market-1501 (Zheng et al., ICCV 2015): `bounding_box_train/`, `query/`, `bounding_box_test/`.

File names look like `0002_c1s1_000451_03.jpg`: person id, camera (c1..c6), sequence, frame,
detection index. pid -1 = junk, 0 = distractor (both only in query/gallery; kept there, never in
train). A few real query/gallery names deviate from the full pattern; any image name that still
starts with `<pid>_c<camera>` (torchreid's rule) is accepted, anything else is an error naming the
file. Non-image files (the real archive ships `Thumbs.db`) are ignored and counted.
"""

import os

from sal_tf.data import records as records_lib
from sal_tf.utils.person_ids import NAME_PATTERN

SPLIT_DIRS = ("bounding_box_train", "query", "bounding_box_test")
SUBFOLDERS = ("Market-1501-v15.09.15", "Market-1501")
PATTERN = NAME_PATTERN
EXPECTED = "'0002_c1s1_000451_03.jpg' (<pid>_c<camera>s<seq>_<frame>_<box>.jpg; pid -1 = junk, 0 = distractor)"


def load_market_style(root, name, subfolders, pattern, expected, max_camera, verbose):
    """Loads a dataset in the Market-1501 folder layout (shared with DukeMTMC-reID)."""
    root = os.path.abspath(os.path.expanduser(root))
    base = records_lib.find_root(root, SPLIT_DIRS, subfolders, name)
    skipped = {"non_image": 0, "hidden": 0, "train_junk_or_distractor": 0}
    splits = {}
    for split, folder in zip(("train", "query", "gallery"), SPLIT_DIRS):
        splits[split] = records_lib.parse_folder(
            os.path.join(base, folder), pattern, expected, skipped, max_camera=max_camera
        )
    train = [r for r in splits["train"] if r.pid > records_lib.DISTRACTOR_PID]
    skipped["train_junk_or_distractor"] = len(splits["train"]) - len(train)
    if not train:
        raise ValueError(
            f"{os.path.join(base, SPLIT_DIRS[0])!r} holds only junk/distractor images "
            f"(pid -1 or 0); expected real identities named like {expected}."
        )
    train, original = records_lib.relabel_train(train)
    dataset = records_lib.ReIDDataset(
        name=name,
        root=base,
        train=train,
        query=splits["query"],
        gallery=splits["gallery"],
        skipped_files=skipped,
        train_original_pids=original,
    )
    if verbose:
        print(dataset.summary())
    return dataset


def load_market1501(root, verbose=True):
    """Loads Market-1501 from `root` (`Market-1501-v15.09.15/` or its parent).

    Returns:
        `ReIDDataset`; train pids relabelled 0..750, camids 0..5.
    """
    return load_market_style(root, "market1501", SUBFOLDERS, PATTERN, EXPECTED, max_camera=6, verbose=verbose)

"""Re-ID records and the dataset container shared by every parser.

Conventions (the same for every dataset):

* `Record.path` is an absolute (or as-given) file path, `Record.pid` the person id,
  `Record.camid` the 0-based camera id (`c1` in a Market/Duke name is camera 0).
* Train pids are relabelled 0..N-1 in order of the sorted original ids
  (`ReIDDataset.train_original_pids[label]` gives the original id back).
* Query/gallery keep the original ids: -1 = junk (ignored by the evaluation), 0 = distractor
  in Market-1501 (an ordinary non-matching id for the evaluation). Junk and distractors never
  enter `train`.
"""

import dataclasses
import os
import re

from sal_tf.utils import is_image_file
from sal_tf.utils.person_ids import DISTRACTOR_PID, JUNK_PID


@dataclasses.dataclass(frozen=True)
class Record:
    """One image: file path, person id, 0-based camera id."""

    path: str
    pid: int
    camid: int


@dataclasses.dataclass
class ReIDDataset:
    """Train / query / gallery records of one re-ID dataset.

    Attributes:
        name: dataset name, e.g. `"market1501"`.
        root: the folder the splits were read from.
        train, query, gallery: lists of `Record`; train pids relabelled 0..N-1.
        skipped_files: counts of files that were ignored, by reason
            (`"non_image"`, `"hidden"`, `"train_junk_or_distractor"`, ...).
        train_original_pids: original id of each train label (index = label).
    """

    name: str
    root: str
    train: list
    query: list
    gallery: list
    skipped_files: dict = dataclasses.field(default_factory=dict)
    train_original_pids: list = dataclasses.field(default_factory=list)

    @property
    def num_train_pids(self):
        """Number of training identities (= number of classes)."""
        return len({r.pid for r in self.train})

    @property
    def num_cameras(self):
        """1 + the largest 0-based camera id over all splits."""
        camids = [r.camid for split in (self.train, self.query, self.gallery) for r in split]
        return max(camids) + 1 if camids else 0

    def summary(self):
        """A fast-reid style table of ids / images / cameras per split."""
        rows = []
        for split_name, split in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            ids = {r.pid for r in split if r.pid != JUNK_PID}
            cams = {r.camid for r in split}
            rows.append((split_name, len(ids), len(split), len(cams)))
        line = "  " + "-" * 42
        out = [
            f"=> Loaded {self.name} from {self.root}",
            line,
            f"  {'subset':<8} | {'# ids':>7} | {'# images':>8} | {'# cameras':>9}",
            line,
        ]
        for split_name, n_ids, n_images, n_cams in rows:
            out.append(f"  {split_name:<8} | {n_ids:>7} | {n_images:>8} | {n_cams:>9}")
        out.append(line)
        n_junk = sum(r.pid == JUNK_PID for r in self.gallery + self.query)
        n_distractor = sum(r.pid == DISTRACTOR_PID for r in self.gallery)
        if n_junk or n_distractor:
            out.append(
                f"  query+gallery hold {n_junk} junk (-1) images; gallery holds {n_distractor} distractor (0) images"
            )
        skipped = {k: v for k, v in self.skipped_files.items() if v}
        if skipped:
            out.append("  skipped files: " + ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())))
        return "\n".join(out)


def list_image_files(folder, skipped):
    """Sorted image file names in `folder`; other entries are counted in `skipped`.

    Hidden files (`.DS_Store`, macOS `._*` forks) count as `"hidden"`, everything else that
    is not an image file (e.g. Market's `Thumbs.db`, sub-folders) as `"non_image"`.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Expected a folder at {folder!r}; it does not exist.")
    names = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            skipped["hidden"] = skipped.get("hidden", 0) + 1
        elif is_image_file(name) and os.path.isfile(os.path.join(folder, name)):
            names.append(name)
        else:
            skipped["non_image"] = skipped.get("non_image", 0) + 1
    return names


def relabel_train(records):
    """Relabels train pids to 0..N-1 (sorted original ids).

    Returns:
        (relabelled records, list of original pids indexed by the new label).
    """
    original = sorted({r.pid for r in records})
    mapping = {pid: label for label, pid in enumerate(original)}
    return [Record(r.path, mapping[r.pid], r.camid) for r in records], original


def parse_folder(folder, pattern, expected, skipped, max_camera=9):
    """Parses `<pid>_c<cam>...` file names of one split folder.

    `pattern` must capture pid and camera from the start of the name (torchreid's tolerant rule,
    e.g. `^(-?\\d+)_c(\\d)(?!\\d)`), so names that deviate after the camera are still read;
    any other image name raises a `ValueError` naming the file and `expected`.

    Returns:
        list of `Record` with the original pid and a 0-based camid, in sorted file order.
    """
    records = []
    for name in list_image_files(folder, skipped):
        match = re.match(pattern, name)
        if match is None:
            raise ValueError(
                f"Cannot parse the person id and camera from {os.path.join(folder, name)!r}: "
                f"expected names like {expected}."
            )
        pid, cam = int(match.group(1)), int(match.group(2))
        if pid < JUNK_PID or not 1 <= cam <= max_camera:
            raise ValueError(
                f"Bad person id {pid} or camera c{cam} in {os.path.join(folder, name)!r}: "
                f"expected pid >= -1 and camera c1..c{max_camera} (names like {expected})."
            )
        records.append(Record(os.path.join(folder, name), pid, cam - 1))
    if not records:
        raise ValueError(f"Split folder {folder!r} holds no images: expected files named like {expected}.")
    return records


def find_root(root, split_dirs, subfolder_names, dataset_name):
    """Returns the folder holding all `split_dirs`: `root` itself or `root/<subfolder>`.

    Raises:
        FileNotFoundError naming the missing folders and the expected layout.
    """
    candidates = [root] + [os.path.join(root, sub) for sub in subfolder_names]
    for candidate in candidates:
        if all(os.path.isdir(os.path.join(candidate, d)) for d in split_dirs):
            return candidate
    # Report against the most plausible candidate: the first one that exists with some splits.
    best = next((c for c in candidates if any(os.path.isdir(os.path.join(c, d)) for d in split_dirs)), root)
    missing = [d for d in split_dirs if not os.path.isdir(os.path.join(best, d))]
    layout = ", ".join(f"{d}/" for d in split_dirs)
    raise FileNotFoundError(
        f"{dataset_name}: missing folder(s) {missing} under {best!r}. Expected the root to hold "
        f"{layout} (the root may also be the parent of {' or '.join(subfolder_names)}/)."
    )

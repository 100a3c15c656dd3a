"""Custom data: a folder with `train.csv`, `query.csv`, `gallery.csv`.

Each CSV has a header with (at least) the columns `path,person_id,camera_id`; `path` is relative to
the folder (absolute paths also work), so camera data can be used without renaming files.
`camera_id` is any non-negative integer, used as given (0-based recommended). `person_id` is an
integer >= -1; -1 marks junk: ignored by the evaluation, skipped (and counted) in train.
Unlike Market-1501, id 0 is an ordinary identity here.
"""

import csv
import os

from sal_tf.data import records as records_lib

SPLIT_FILES = ("train.csv", "query.csv", "gallery.csv")
COLUMNS = ("path", "person_id", "camera_id")
EXPECTED = (
    "a folder holding train.csv, query.csv and gallery.csv, each with the header "
    "'path,person_id,camera_id' (paths relative to the folder)"
)


def read_csv(csv_path, require_files=True):
    """`Record`s of one CSV in the custom layout (`path,person_id,camera_id`; paths relative to it).

    With `require_files=False` rows whose image is missing are kept (the embed command reports them).
    """
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"Missing {csv_path!r}: expected {EXPECTED}.")
    folder = os.path.dirname(os.path.abspath(csv_path))
    records = []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{csv_path!r} lacks column(s) {missing} (header: {header}); "
                f"expected the header 'path,person_id,camera_id'."
            )
        reader.fieldnames = header
        for row in reader:
            values = [(row.get(c) or "").strip() for c in COLUMNS]
            if any(values):  # blank lines are skipped
                records.append(_record(csv_path, reader.line_num, folder, values, require_files))
    if not records:
        raise ValueError(f"{csv_path!r} lists no images: expected rows 'path,person_id,camera_id'.")
    return records


def _record(csv_path, line, folder, values, require_file):
    rel_path, pid_text, cam_text = values
    try:
        pid, camid = int(pid_text), int(cam_text)
    except ValueError:
        raise ValueError(
            f"{csv_path!r} line {line}: person_id={pid_text!r} and camera_id={cam_text!r} must be integers."
        ) from None
    if pid < records_lib.JUNK_PID or camid < 0:
        raise ValueError(
            f"{csv_path!r} line {line}: expected person_id >= -1 and camera_id >= 0, got {pid} and {camid}."
        )
    if not rel_path:
        raise ValueError(f"{csv_path!r} line {line}: empty path.")
    path = os.path.join(folder, rel_path)
    if require_file and not os.path.isfile(path):
        raise FileNotFoundError(
            f"{csv_path!r} line {line}: image {rel_path!r} does not exist "
            f"(looked for {path!r}; paths are relative to the CSV's folder)."
        )
    return records_lib.Record(path, pid, camid)


def load_custom(root, verbose=True):
    """Loads a custom dataset from the CSV folder `root` (see the module docstring).

    Returns:
        `ReIDDataset` named `"custom"`; train pids relabelled 0..N-1.
    """
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Custom dataset folder {root!r} does not exist: expected {EXPECTED}.")
    train, query, gallery = (read_csv(os.path.join(root, f)) for f in SPLIT_FILES)
    kept = [r for r in train if r.pid != records_lib.JUNK_PID]
    if not kept:
        raise ValueError(f"{os.path.join(root, 'train.csv')!r} has only junk rows (person_id -1).")
    relabelled, original = records_lib.relabel_train(kept)
    dataset = records_lib.ReIDDataset(
        name="custom",
        root=root,
        train=relabelled,
        query=query,
        gallery=gallery,
        skipped_files={"train_junk": len(train) - len(kept)},
        train_original_pids=original,
    )
    if verbose:
        print(dataset.summary())
    return dataset

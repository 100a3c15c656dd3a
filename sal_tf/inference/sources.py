"""Which images to embed: a folder (recursively), a glob pattern, or a CSV; ids from file names.

* Folder: every image file below it (`sal_tf.utils.is_image_file`), hidden files and folders
  skipped, sorted by path.
* Glob: `glob.glob(pattern, recursive=True)` (`**` spans folders), image files only, sorted.
* CSV: the custom-dataset layout (`sal_tf/data/custom.py`): a header with `path,person_id,camera_id`,
  paths relative to the CSV's folder; its ids are used as given.

For folders and globs, `person_id` / `camera_id` come from Market-1501 / DukeMTMC-reID names
(`0002_c1s1_000451_03.jpg`, `0005_c2_f0046985.jpg`: `<pid>_c<camera>`, camera 1-based in the
name, 0-based in the ids, as the dataset parsers and the evaluation protocol do).

What a person reads is the camera as the file name (or the CSV) numbers it: `camera_number` turns
a 0-based id parsed from a name back into the name's number (`c1` → 1), and leaves a CSV's camera
as given; the search command's table and pictures and the gallery store's `Item.camera` use it.
"""

import dataclasses
import glob
import os

from sal_tf.data import custom
from sal_tf.utils import is_image_file
from sal_tf.utils.person_ids import camera_number, parse_ids  # noqa: F401 (this module's names since 0.1)

EXPECTED = (
    "a folder of images, a glob pattern (e.g. 'photos/**/*.jpg') or a CSV with the header path,person_id,camera_id"
)


@dataclasses.dataclass
class ImageList:
    """Paths to embed and, when known, their ids.

    Attributes:
        paths: list of str.
        pids, camids: lists of int (same length as `paths`), or None when not every id is known.
        ids_from: "csv", "file names" or None.
    """

    paths: list
    pids: list = None
    camids: list = None
    ids_from: str = None


def parse_camera(name):
    """The camera number written in a Market/Duke style file name (`0002_c1s1_...` → 1), or None."""
    ids = parse_ids(name)
    return None if ids is None else ids[1] + 1


def _folder_images(folder):
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in files if is_image_file(f) and not f.startswith("."))
    return sorted(found)


def read_csv(csv_path):
    """`ImageList` of a CSV in the custom-dataset layout (missing files are kept: embed reports them)."""
    records = custom.read_csv(csv_path, require_files=False)
    return ImageList([r.path for r in records], [r.pid for r in records], [r.camid for r in records], "csv")


def with_name_ids(paths):
    """`ImageList` of `paths`, with ids when every file name parses (see `parse_ids`)."""
    ids = [parse_ids(p) for p in paths]
    if paths and all(i is not None for i in ids):
        return ImageList(list(paths), [i[0] for i in ids], [i[1] for i in ids], "file names")
    return ImageList(list(paths))


def list_images(spec, flag="--images"):
    """`ImageList` for a folder, a glob pattern or a CSV file (see the module docstring).

    `flag` names the option in error messages.

    Raises:
        FileNotFoundError / ValueError: nothing there, or no image matched (the message says what is expected).
    """
    spec = os.path.expanduser(os.fspath(spec))
    if os.path.isdir(spec):
        paths = _folder_images(spec)
        where = f"folder {spec!r}"
    elif os.path.isfile(spec) and spec.lower().endswith(".csv"):
        images = read_csv(spec)
        if not images.paths:
            raise ValueError(f"{spec!r} lists no images; expected rows 'path,person_id,camera_id'.")
        return images
    elif os.path.isfile(spec) and is_image_file(spec):
        paths, where = [spec], spec
    elif glob.has_magic(spec):
        paths = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p) and is_image_file(p))
        where = f"glob {spec!r}"
    elif os.path.exists(spec):
        raise ValueError(f"{flag}={spec!r} is neither a folder, an image, a glob nor a .csv; expected {EXPECTED}.")
    else:
        raise FileNotFoundError(f"{flag}: {spec!r} does not exist; expected {EXPECTED}.")
    if not paths:
        raise ValueError(f"{flag}: no image files in {where} (extensions .jpg .jpeg .png .bmp .gif .webp).")
    return with_name_ids(paths)

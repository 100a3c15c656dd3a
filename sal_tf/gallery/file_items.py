"""`file_item`: the metadata an image file gets by default in a gallery, the one definition for
`sal-search add` (`sal_tf/cli/search/stores.py`, whose flags may override it) and
`sal-serve --index_images` (`sal_tf/serve/indexing.py`).

* `id` and `path`: the file's absolute path (adding the file again replaces its item);
* `timestamp`: the file's modification time (None when it is no file);
* `camera`: as people number it: from a known 0-based `camid` (`sal_tf.utils.person_ids.camera_number`:
  a Market / Duke name's `c1` → 1, a CSV's own number as given), else from the file name, else None;
* `person_id`: the known `pid`, else the Market / Duke name's identity, else None.
"""

import os

from sal_tf.gallery.base import Item
from sal_tf.utils.person_ids import camera_number, parse_ids


def file_item(path, camid=None, pid=None):
    """The default `Item` of the image file `path` (see the module docstring)."""
    name = os.path.abspath(path)
    ids = parse_ids(path)
    camera = camera_number(path, camid) if camid is not None else (ids[1] + 1 if ids else None)
    person_id = int(pid) if pid is not None else (ids[0] if ids else None)
    timestamp = os.path.getmtime(path) if os.path.isfile(path) else None
    return Item(id=name, camera=camera, timestamp=timestamp, path=name, person_id=person_id)

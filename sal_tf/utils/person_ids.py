"""Person ids with a meaning in the Market-1501 protocol, and the ids a file name carries.

`sal_tf.data` writes them into records and `sal_tf.evaluation` reads them from id arrays; neither
layer may import the other, so the values live here (`sal_tf/data/records.py` describes the records).

Market-1501 / DukeMTMC-reID names (`0002_c1s1_000451_03.jpg`, `0005_c2_f0046985.jpg`) hold
`<pid>_c<camera>`, the camera 1-based; the records and the evaluation number cameras from 0.
What a person reads is the name's number: `camera_number` turns a 0-based id back into it.
"""

import os
import re

JUNK_PID = -1  # ignored by the evaluation (neither a match nor a mismatch), never trained on
DISTRACTOR_PID = 0  # an ordinary non-matching gallery id (Market-1501's distractors), never trained on

# pid and a single-digit camera at the start of a Market-1501 / DukeMTMC-reID name; the rest may vary.
NAME_PATTERN = r"^(-?\d+)_c(\d)(?!\d)"
_NAME_RE = re.compile(NAME_PATTERN)


def parse_ids(name):
    """(pid, 0-based camid) of a Market/Duke style file name (a path's base name), or None."""
    m = _NAME_RE.match(os.path.basename(name))
    return None if m is None else (int(m.group(1)), int(m.group(2)) - 1)


def camera_number(path, camid):
    """The camera of `path` as a person numbers it, from its stored (evaluation, 0-based) `camid`.

    For a file whose Market/Duke name gave that camid, the name's number (`c1` → 1); any other
    camid (a CSV's own numbering) as given; None when `camid` is None.
    """
    if camid is None:
        return None
    ids = parse_ids(path) if path else None
    return int(camid) + 1 if ids is not None and ids[1] == int(camid) else int(camid)

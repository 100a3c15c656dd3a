"""DukeMTMC-reID (Zheng et al., ICCV 2017): Market-1501 folder layout, names `0001_c2_f0046182.jpg`.

Root: `DukeMTMC-reID/` or its parent. Cameras c1..c8. The same tolerance as Market-1501: any image
name starting with `<pid>_c<camera>` is accepted, anything else is an error naming the file.
"""

from sal_tf.data.market1501 import load_market_style
from sal_tf.utils.person_ids import NAME_PATTERN

SUBFOLDERS = ("DukeMTMC-reID",)
PATTERN = NAME_PATTERN
EXPECTED = "'0001_c2_f0046182.jpg' (<pid>_c<camera>_f<frame>.jpg)"


def load_dukemtmc(root, verbose=True):
    """Loads DukeMTMC-reID from `root` (`DukeMTMC-reID/` or its parent).

    Returns:
        `ReIDDataset`; train pids relabelled 0..701, camids 0..7.
    """
    return load_market_style(root, "dukemtmc", SUBFOLDERS, PATTERN, EXPECTED, max_camera=8, verbose=verbose)

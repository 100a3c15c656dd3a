"""Transit times learned from the run's own confident links: how long people take from one camera to the next.

Where the cameras sit and how long the walk between them takes is usually unknown. Like the
unsupervised camera-topology learning of Makris, Ellis & Black ("Bridging the gaps between
cameras", CVPR 2004), which finds the links between cameras and their transit times from the
departures and arrivals alone, the model is learned from the run itself: after a first
clustering (`sal_tf.mtmc.linking.cluster`), every pair of consecutive appearances of a group whose
two tracklets are confidently one person (cosine distance at most the FMR 1e-2 distance) is a
sample of a transit A → B (camera of the first, camera of the second — the same camera for a
person who came back) taking `gap` seconds (the second's start minus the first's end). The
"anyone" background is every allowed ordered pair of tracklets. For a transit A → B after `gap`:

    log LR = log[(n · p_same(A→B, gap) + k · p_any(A→B, gap)) / ((n + k) · p_any(A→B, gap))]

with Gaussian kernel densities (`BANDWIDTH`) over all camera pairs (so a pair nobody was seen to
take is unlikely), n learned samples and k = `PRIOR` pseudo-samples of the background (a model
learned from few links stays near LR 1), clipped to [1/`MAX_RATIO`, `MAX_RATIO`]. A group's
journey scores the sum over its consecutive appearances; a merge of groups a and b changes it by
`gain = J(a ∪ b) − J(a) − J(b)`: filling the gap of a journey with the missing camera is a gain,
a journey with a transit nobody takes or a detour of 20 s where others take 3 s is a loss. The
second clustering merges at the average distance minus `scale · gain`, `scale` being the
distance that one unit of log-odds is worth (`log_odds_scale`): links consistent with the
learned transits are relaxed, inconsistent ones tightened. Measured in BUILD.md "Multi-camera
tracking".
"""

import dataclasses

import numpy as np

BANDWIDTH = 2.0  # seconds: Gaussian kernel of the transit densities (tuning cameras, seeds 41/43/44: 0.5 / 2 / 3 / 4 s)
PRIOR = 3.0  # background pseudo-samples mixed into the learned density (1 / 3 / 10 tried)
MAX_RATIO = 10.0  # the likelihood ratio of one transit is clipped to [1 / this, this] (3 / 10 tried)
STEP = 0.25  # seconds: the grid the densities are tabulated on


@dataclasses.dataclass
class Learning:
    """How the transit model is learned and used: `confident` (the cosine distance below which two consecutive
    appearances are a sample) and `scale` (distance per unit of log-odds, `log_odds_scale`)."""

    confident: float
    scale: float
    bandwidth: float = BANDWIDTH
    prior: float = PRIOR
    max_ratio: float = MAX_RATIO


def log_odds_scale(calibration):
    """Cosine distance per unit of log-odds of the calibrated P(same | distance) (1 / |slope| of a line through
    logit P over the calibration's knots with P in (0.05, 0.95)); None when it has fewer than 2 such knots."""
    knots = (calibration or {}).get("knots")
    if not knots:
        return None
    distance, p = np.asarray(knots["distance"], np.float64), np.asarray(knots["probability"], np.float64)
    inside = (p > 0.05) & (p < 0.95)
    if inside.sum() < 2 or np.ptp(distance[inside]) == 0:
        return None
    slope = np.polyfit(distance[inside], np.log(p[inside] / (1 - p[inside])), 1)[0]
    return float(1.0 / abs(slope)) if slope < 0 else None


def observed_scale(different, fmr=1e-2):
    """Without a calibration: the distance over which the share of pairs known to be two people (`different`,
    e.g. tracklets of two cameras at once) below it grows tenfold, from `fmr` to 10·`fmr`, per unit of log-odds
    (the different-person likelihood's slope near the threshold); None with fewer than 2 pairs."""
    different = np.asarray(different, np.float64)
    if len(different) < 2:
        return None
    low, high = np.quantile(different, [fmr, min(10 * fmr, 1.0)])
    return float((high - low) / np.log(10)) if high > low else None


class Model:
    """The learned transits of one run (see the module docstring); tracklets are referred to by index."""

    def __init__(self, tracklets, groups, distance, blocked, learning):
        self.cameras = [t.camera for t in tracklets]
        self.start = np.array([t.start for t in tracklets], np.float64)
        self.end = np.array([t.end for t in tracklets], np.float64)
        self.limit = np.log(learning.max_ratio)
        learned = {}
        for group in groups:
            order = sorted(group, key=lambda m: self.start[m])
            for x, y in zip(order, order[1:]):
                if distance[x, y] <= learning.confident:
                    learned.setdefault((self.cameras[x], self.cameras[y]), []).append(self.start[y] - self.end[x])
        first, second = np.nonzero(
            ~blocked & (self.start[:, None] <= self.start[None, :]) & ~np.eye(len(tracklets), dtype=bool)
        )
        anyone = {}
        for x, y in zip(first, second):
            anyone.setdefault((self.cameras[x], self.cameras[y]), []).append(self.start[y] - self.end[x])
        self.samples = sum(len(v) for v in learned.values())
        gaps = np.concatenate([np.asarray(v) for v in anyone.values()]) if anyone else np.zeros(1)
        self.low = float(gaps.min()) - learning.bandwidth
        grid = np.arange(self.low, float(gaps.max()) + learning.bandwidth + STEP, STEP)
        self.table = {}
        n, k, total = self.samples, learning.prior, max(len(first), 1)
        for pair, values in anyone.items():
            p_any = _density(grid, values, learning.bandwidth) / total + 1e-12
            p_same = _density(grid, learned.get(pair, []), learning.bandwidth) / max(n, 1)
            ratio = (n * p_same + k * p_any) / ((n + k) * p_any)
            self.table[pair] = np.clip(np.log(ratio), -self.limit, self.limit)

    def log_ratio(self, x, y):
        """log LR of tracklet `y` following tracklet `x` as one person (0 for a camera pair never allowed)."""
        table = self.table.get((self.cameras[x], self.cameras[y]))
        if table is None:
            return 0.0
        k = int(round((self.start[y] - self.end[x] - self.low) / STEP))
        return float(table[min(max(k, 0), len(table) - 1)])

    def journey(self, members):
        """The summed log LR of a group's consecutive appearances."""
        order = sorted(members, key=lambda m: self.start[m])
        return sum(self.log_ratio(x, y) for x, y in zip(order, order[1:]))


def _density(grid, values, bandwidth):
    """Unnormalised Gaussian kernel density (the sum of the kernels) of `values` on `grid`."""
    values = np.asarray(values, np.float64)
    if not len(values):
        return np.zeros(len(grid))
    z = (grid[:, None] - values[None, :]) / bandwidth
    return np.exp(-0.5 * z * z).sum(1) / (bandwidth * np.sqrt(2 * np.pi))

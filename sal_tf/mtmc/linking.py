"""Tracklets → global identities: average-linkage clustering under hard constraints.

Two tracklets can never be one person when (`conflicts`):

* they are of one camera and share a frame (two tracks of one camera at the same time);
* they are of two cameras and their time spans overlap on the common time line (one person is
  never in two places at once — the cameras' views are assumed not to overlap);
* a transit window `A:B:MIN_S:MAX_S` is given for their cameras (either direction) and the second
  starts less than MIN_S after the first ends (nobody walks from A to B faster).

These are pairwise and monotone (a group containing a conflicting pair stays invalid), so each
merge ORs the two groups' rows of a blocked matrix. MAX_S applies to consecutive appearances of a
group (a person may pass through other cameras in between), checked when a merge is proposed.

Clustering (`cluster`): agglomerative, average linkage of the cosine distance between tracklet
embeddings — with unit rows, the mean pairwise distance of groups A and B is
1 − (Σ_A f · Σ_B f) / (|A| |B|) — merging the closest allowed pair while its distance is at most
the threshold (from the model's calibration, `sal_tf.evaluation.calibration`). `link` runs it
once over all tracklets of all cameras (a person back after an occlusion or an exit, in the same
camera or another, is the same question); `across=False` links only within each camera, tracklets
at most `relink_gap` seconds apart. A first within-camera pass before the global one was tried and
dropped: it merges a camera's look-alikes before the other cameras' views of them can pull them
apart (tuning cameras, seed 41: cross-camera IDF1 0.514 with it, 0.545 without, at the same
threshold; BUILD.md "Multi-camera tracking").

Learned transits (`link(learning=…)`, `sal_tf.mtmc.transit`): the first clustering's confident
links teach how long people take from camera to camera; the tracklets are then clustered again
(and short ones attached) at the average distance minus `scale` × the merge's gain in journey
log-likelihood ratio. Look-alikes that the appearance alone crossed (one person's view in camera
1 with another's in camera 2, 20 s too late) come apart; a journey whose gap the merge fills
joins more easily.
"""

import numpy as np

from sal_tf.mtmc import transit

DEFAULT_RELINK_GAP = 30.0  # seconds: within a camera, the first pass links tracklets at most this far apart
MIN_BOXES = 10  # tracklets with fewer boxes join a group after the clustering (`attach`); tuning cameras, seed 41:
# cross-camera IDF1 0.70 clustering all, 0.71 / 0.74 / 0.74 with 5 / 10 / 20 (BUILD.md "Multi-camera tracking")


def parse_transit(specs):
    """`--transit=A:B:MIN_S:MAX_S` items → {(A, B): (min, max), (B, A): (min, max)}; errors name the flag."""
    windows = {}
    for spec in specs or ():
        parts = spec.split(":")
        try:
            a, b, low, high = parts[0], parts[1], float(parts[2]), float(parts[3])
        except (IndexError, ValueError):
            raise ValueError(f"--transit: expected CAMERA_A:CAMERA_B:MIN_S:MAX_S, got {spec!r}.") from None
        if len(parts) != 4 or not a or not b or a == b or not 0 <= low <= high:
            raise ValueError(f"--transit {spec!r}: two different cameras and 0 <= MIN_S <= MAX_S expected.")
        windows[(a, b)] = windows[(b, a)] = (low, high)
    return windows


def check_transit_cameras(windows, names):
    unknown = sorted({c for pair in windows for c in pair} - set(names))
    if unknown:
        raise ValueError(f"--transit names {unknown}, not cameras of --source ({sorted(names)}).")


def conflicts(tracklets, windows=None):
    """bool [T, T]: the pairs that can never be one person (see the module docstring)."""
    windows = windows or {}
    start = np.array([t.start for t in tracklets])
    end = np.array([t.end for t in tracklets])
    cams = np.array([t.camera for t in tracklets])
    same_cam = cams[:, None] == cams[None, :]
    overlap = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])
    out = overlap & ~same_cam
    for i, j in zip(*np.nonzero(np.triu(overlap & same_cam, 1))):  # spans overlap: do frames coincide?
        out[i, j] = out[j, i] = bool(np.intersect1d(tracklets[i].frames, tracklets[j].frames).size)
    for (a, b), (low, _) in windows.items():
        pair = (cams[:, None] == a) & (cams[None, :] == b)
        gap = start[None, :] - end[:, None]  # j after i
        too_fast = pair & (gap >= 0) & (gap < low)
        out |= too_fast | too_fast.T
    np.fill_diagonal(out, False)
    return out


def transit_ok(members, tracklets, windows):
    """True when consecutive appearances of two cameras with a window are at most its MAX_S apart."""
    if not windows:
        return True
    ordered = sorted((tracklets[m] for m in members), key=lambda t: t.start)
    for x, y in zip(ordered, ordered[1:]):
        window = windows.get((x.camera, y.camera))
        if window is not None and y.start - x.end > window[1]:
            return False
    return True


class _Groups:
    """The state of a clustering: member lists, feature sums, blocked pairs, the distance matrix; with a learned
    transit model (`sal_tf.mtmc.transit.Model`), each group's journey score and each pair's gain from a merge."""

    def __init__(self, tracklets, groups, blocked, transit=None):
        self.members = [list(g) for g in groups]
        features = np.stack([t.feature for t in tracklets]).astype(np.float64)
        self.sums = np.stack([features[g].sum(0) for g in self.members])
        self.sizes = np.array([len(g) for g in self.members], np.float64)
        index = np.zeros((len(groups), len(tracklets)), bool)
        for i, g in enumerate(self.members):
            index[i, g] = True
        self.blocked = (index.astype(np.int64) @ blocked.astype(np.int64) @ index.T.astype(np.int64)) > 0
        self.active = np.ones(len(groups), bool)
        self.distance = 1.0 - (self.sums @ self.sums.T) / np.outer(self.sizes, self.sizes)
        self.transit, self.gain = transit, np.zeros((len(groups), len(groups)))
        if transit is not None:
            self.journey = np.array([transit.journey(g) for g in self.members])
            for i in range(len(groups)):
                self._gains(i, range(i + 1, len(groups)))

    def _gains(self, i, others):
        """gain[i, k] = J(i ∪ k) − J(i) − J(k) for the allowed `others` (`transit` docstring)."""
        for k in others:
            if k != i and self.active[k] and not self.blocked[i, k]:
                joined = self.transit.journey(self.members[i] + self.members[k])
                self.gain[i, k] = self.gain[k, i] = joined - self.journey[i] - self.journey[k]

    def merge(self, i, j):
        self.members[i] += self.members[j]
        self.sums[i] += self.sums[j]
        self.sizes[i] += self.sizes[j]
        self.blocked[i] |= self.blocked[j]
        self.blocked[:, i] = self.blocked[i]
        self.active[j] = False
        self.distance[i] = self.distance[:, i] = 1.0 - (self.sums @ self.sums[i]) / (self.sizes * self.sizes[i])
        if self.transit is not None:
            self.journey[i] = self.transit.journey(self.members[i])
            self._gains(i, range(len(self.members)))


def cluster(tracklets, groups, threshold, windows=None, blocked=None, may_link=None, transit=None, scale=0.0):
    """Merges `groups` (lists of tracklet indices) by average linkage while the closest allowed pair is ≤ `threshold`.

    `blocked`: `conflicts(tracklets, windows)` (computed when None); `may_link(members_a, members_b)`:
    an extra condition on a pair (e.g. one camera, close in time); `transit`: a learned
    `sal_tf.mtmc.transit.Model` — a pair's distance is then its average distance minus `scale` × the
    merge's gain in journey log-likelihood ratio. Returns the groups, as lists.
    """
    if not groups:
        return []
    blocked = conflicts(tracklets, windows) if blocked is None else blocked
    state = _Groups(tracklets, groups, blocked, transit)
    n = len(groups)
    refused = np.zeros((n, n), bool)  # a merge that broke a transit window's MAX_S
    outside = np.zeros((n, n), bool)  # pairs `may_link` rules out
    if may_link is not None:
        for i in range(n):
            for j in range(i + 1, n):
                outside[i, j] = outside[j, i] = not state.blocked[i, j] and not may_link(
                    state.members[i], state.members[j]
                )
    while True:
        closed = state.blocked | refused | outside | ~np.outer(state.active, state.active) | np.eye(n, dtype=bool)
        candidates = np.where(closed, np.inf, state.distance - scale * state.gain)
        i, j = np.unravel_index(np.argmin(candidates), candidates.shape)
        if not candidates[i, j] <= threshold:
            break
        if not transit_ok(state.members[i] + state.members[j], tracklets, windows):
            refused[i, j] = refused[j, i] = True
            continue
        state.merge(i, j)
        refused[i] |= refused[j]
        refused[:, i] = refused[i]
        if may_link is not None:
            for k in np.nonzero(state.active)[0]:
                if k != i:
                    outside[i, k] = outside[k, i] = not state.blocked[i, k] and not may_link(
                        state.members[i], state.members[k]
                    )
    return [state.members[i] for i in np.nonzero(state.active)[0]]


def attach(tracklets, groups, short, threshold, blocked, windows=None, may_link=None, transit=None, scale=0.0):
    """Adds each of the `short` tracklets (indices, longest first) to the group of smallest average distance that
    it may join (no blocked pair, transit windows kept, `may_link`), if at most `threshold`; else it stays alone.

    A few boxes give a noisy embedding: clustered with the others, such a tracklet joins a wrong
    group early and its time span then blocks that group's right merges; attached afterwards it
    can only join a group, never bridge two. With a learned `transit` model the distance is
    lowered by `scale` × the gain of the group's journey (as in `cluster`).
    """
    groups = [list(g) for g in groups]
    features = np.stack([t.feature for t in tracklets]).astype(np.float64)
    for i in sorted(short, key=lambda i: -len(tracklets[i].frames)):
        best, best_distance = None, threshold
        for k, g in enumerate(groups):
            if blocked[i, g].any() or (may_link is not None and not may_link(g, [i])):
                continue
            distance = 1.0 - features[g].sum(0) @ features[i] / len(g)
            if transit is not None:
                distance -= scale * (transit.journey(g + [i]) - transit.journey(g))
            if distance <= best_distance and transit_ok(g + [i], tracklets, windows):
                best, best_distance = k, distance
        if best is None:
            groups.append([i])
        else:
            groups[best].append(i)
    return groups


def link(tracklets, threshold, windows=None, relink_gap=DEFAULT_RELINK_GAP, across=True, min_boxes=MIN_BOXES,
         learning=None):  # fmt: skip
    """Global groups of tracklet indices: one clustering of all cameras' tracklets (see the module docstring).

    Tracklets with at least `min_boxes` boxes are clustered; the shorter ones then `attach` to a
    group. With `learning` (a `sal_tf.mtmc.transit.Learning`, across cameras only) the transit times
    are learned from that clustering's confident links and the tracklets clustered again with them
    (`sal_tf.mtmc.transit`). `across=False` links only within each camera (tracklets at most
    `relink_gap` s apart): each camera's tracks kept apart; `threshold=None` links nothing. Groups
    are ordered by their first appearance.
    """
    groups = [[i] for i in range(len(tracklets))]
    if threshold is not None and tracklets:
        blocked = conflicts(tracklets, windows)

        def close_in_one_camera(a, b):
            members = [tracklets[m] for m in a + b]
            if len({t.camera for t in members}) > 1:
                return False
            first, second = sorted((a, b), key=lambda g: min(tracklets[m].start for m in g))
            gap = min(tracklets[m].start for m in second) - max(tracklets[m].end for m in first)
            return gap <= relink_gap

        may_link = None if across else close_in_one_camera
        long = [i for i, t in enumerate(tracklets) if len(t.frames) >= min_boxes]
        short = [i for i, t in enumerate(tracklets) if len(t.frames) < min_boxes]
        groups = cluster(tracklets, [[i] for i in long], threshold, windows, blocked, may_link)
        if learning is not None and across and learning.scale:
            features = np.stack([t.feature for t in tracklets]).astype(np.float64)
            model = transit.Model(tracklets, groups, 1.0 - features @ features.T, blocked, learning)
            groups = cluster(tracklets, [[i] for i in long], threshold, windows, blocked, None, model, learning.scale)
            groups = attach(tracklets, groups, short, threshold, blocked, windows, None, model, learning.scale)
        else:
            groups = attach(tracklets, groups, short, threshold, blocked, windows, may_link)
    return sorted(groups, key=lambda g: min((tracklets[m].start, tracklets[m].camera) for m in g))


def observed_threshold(tracklets, fmr=1e-2, blocked=None, min_pairs=20):
    """The distance at false-match rate `fmr` of pairs known to be two people: tracklets of two cameras at once.

    The run's own "different identity" pairs, under its cameras' light and views (no model
    calibration needed: the histogram baseline's threshold, and the fallback of a model without
    one). None when fewer than `min_pairs` such pairs exist.
    """
    from sal_tf.evaluation.calibration import threshold_at

    different = known_different(tracklets, blocked)
    return None if len(different) < min_pairs else threshold_at(different, fmr)


def known_different(tracklets, blocked=None):
    """Cosine distances of the pairs known to be two people: tracklets of two cameras at the same time."""
    if len(tracklets) < 2:
        return np.zeros(0)
    blocked = conflicts(tracklets) if blocked is None else blocked
    cams = np.array([t.camera for t in tracklets])
    pairs = np.triu(blocked & (cams[:, None] != cams[None, :]), 1)
    features = np.stack([t.feature for t in tracklets]).astype(np.float64)
    return (1.0 - features @ features.T)[pairs]

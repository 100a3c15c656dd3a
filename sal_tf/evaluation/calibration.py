"""A calibrated "same person?": which distance between two embeddings means the same identity.

Measured on an evaluation's query × gallery pairs **across cameras** (the pairs a re-ID system must
decide; junk and distractors, pid ≤ 0, left out): the distances of same-identity pairs and of
different-identity pairs, as the cosine distance 1 − q·g of unit rows (the Euclidean distance of
unit rows is sqrt(2 · cosine), `to_cosine` converts). From them (numpy only):

* **thresholds at false-match rates** (FMR, the face-verification convention, e.g. ISO/IEC
  19795-1): the distance t at which a share `fmr` of different-identity pairs is at most t apart,
  for 1e-2 and 1e-3, with the true-match rate (same-identity pairs ≤ t) it keeps;
* a **distance → probability map**: P(same | distance) by isotonic regression (pool-adjacent-
  violators; Zadrozny & Elkan, KDD 2002) of the pairs' labels on their distance, decreasing, with
  both classes weighted equally — the probability at an even prior, so that it does not depend on
  how many different pairs an evaluation happens to hold. Stored as knots and interpolated.

`calibrate(...)` returns the JSON-able dict that evaluations write beside their results
(`sal-evaluate`'s output and a training run's results.json: `"calibration"`), which `sal-mtmc`
reads (`load`, `threshold`, `probability`).
"""

import json
import os
import re

import numpy as np

STAGE_KEY = re.compile(r"stage\d+")  # the trained stages of a results.json (sal_tf/training)

FMRS = (1e-2, 1e-3)
MAX_DIFFERENT_PAIRS = 4_000_000  # different-identity pairs sampled beyond this (seeded)
KNOTS = 256  # distance bins of the isotonic fit


def to_cosine(distance, metric="euclidean"):
    """The cosine distance of unit rows from their `metric` ("euclidean" / "cosine") distance."""
    d = np.asarray(distance, np.float64)
    return d**2 / 2.0 if metric == "euclidean" else d


def cross_camera_pairs(q_feats, g_feats, q_pids, g_pids, q_cams, g_cams, max_different=MAX_DIFFERENT_PAIRS, seed=0):
    """(same-identity distances, different-identity distances): cosine, of query × gallery pairs across cameras."""
    q, g = np.asarray(q_feats, np.float64), np.asarray(g_feats, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    q_pids, g_pids, q_cams, g_cams = (np.asarray(a) for a in (q_pids, g_pids, q_cams, g_cams))
    qi, gi = q_pids > 0, g_pids > 0
    q, g, q_pids, g_pids, q_cams, g_cams = q[qi], g[gi], q_pids[qi], g_pids[gi], q_cams[qi], g_cams[gi]
    same, different, rng = [], [], np.random.default_rng(seed)
    total = len(q) * len(g)
    keep_share = min(1.0, max_different / max(total, 1))
    for start in range(0, len(q), 256):
        d = 1.0 - q[start : start + 256] @ g.T
        cross = q_cams[start : start + 256, None] != g_cams[None, :]
        is_same = q_pids[start : start + 256, None] == g_pids[None, :]
        same.append(d[cross & is_same])
        other = d[cross & ~is_same]
        different.append(other if keep_share >= 1 else other[rng.random(other.size) < keep_share])
    return np.concatenate(same or [np.zeros(0)]), np.concatenate(different or [np.zeros(0)])


def threshold_at(different, fmr):
    """The largest distance t with share(different ≤ t) ≤ `fmr` (midway between two observed distances)."""
    d = np.sort(np.asarray(different, np.float64))
    if not len(d):
        raise ValueError("calibration: no different-identity pairs across cameras.")
    k = int(np.floor(fmr * len(d)))
    if k == 0:
        return float(d[0] - 1e-9)
    if k >= len(d):
        return float(d[-1])
    return float((d[k - 1] + d[k]) / 2.0)


def isotonic_decreasing(x, y, w):
    """Pool-adjacent-violators: the non-increasing fit of y(x) with weights w (x sorted ascending)."""
    values, weights, counts = [], [], []
    for yi, wi in zip(y, w):
        values.append(yi)
        weights.append(wi)
        counts.append(1)
        while len(values) > 1 and values[-2] < values[-1]:  # an increase: pool the last two blocks
            total = weights[-2] + weights[-1]
            values[-2] = (values[-2] * weights[-2] + values[-1] * weights[-1]) / total
            weights[-2], counts[-2] = total, counts[-2] + counts[-1]
            del values[-1], weights[-1], counts[-1]
    return np.repeat(values, counts)


def probability_knots(same, different, knots=KNOTS):
    """(distances, P(same)) knots of the isotonic map at an even prior (see the module docstring)."""
    same, different = np.asarray(same, np.float64), np.asarray(different, np.float64)
    d = np.concatenate([same, different])
    label = np.concatenate([np.ones(len(same)), np.zeros(len(different))])
    weight = np.concatenate([np.full(len(same), 0.5 / len(same)), np.full(len(different), 0.5 / len(different))])
    edges = np.unique(np.quantile(d, np.linspace(0, 1, knots + 1)))
    bins = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, max(len(edges) - 2, 0))
    w = np.bincount(bins, weight, len(edges))
    mean_d = np.bincount(bins, weight * d, len(edges))
    mean_y = np.bincount(bins, weight * label, len(edges))
    used = w > 0
    x, y, w = mean_d[used] / w[used], mean_y[used] / w[used], w[used]
    return x, isotonic_decreasing(x, y, w)


def calibrate(same, different, fmrs=FMRS):
    """The calibration dict of same / different cosine distances (see the module docstring)."""
    same, different = np.asarray(same, np.float64), np.asarray(different, np.float64)
    if not len(same) or not len(different):
        raise ValueError(
            f"calibration: needs same- and different-identity pairs across cameras; got {len(same)} and "
            f"{len(different)}."
        )
    thresholds = []
    for fmr in fmrs:
        t = threshold_at(different, fmr)
        thresholds.append({"fmr": fmr, "distance": round(t, 6), "tmr": round(float(np.mean(same <= t)), 6)})
    x, p = probability_knots(same, different)
    return {
        "distance": "cosine",
        "pairs": {"same": int(len(same)), "different": int(len(different))},
        "thresholds": thresholds,
        "knots": {"distance": [round(float(v), 6) for v in x], "probability": [round(float(v), 6) for v in p]},
        "same_median": round(float(np.median(same)), 6),
        "different_median": round(float(np.median(different)), 6),
    }


def calibrate_features(q_feats, g_feats, q_pids, g_pids, q_cams, g_cams):
    """`calibrate` of an evaluation's query / gallery embeddings (`cross_camera_pairs`); None without both kinds of pairs."""
    same, different = cross_camera_pairs(q_feats, g_feats, q_pids, g_pids, q_cams, g_cams)
    return calibrate(same, different) if len(same) and len(different) else None


def threshold(calibration, fmr=1e-2):
    """The cosine distance of `calibration` at false-match rate `fmr` (one it was measured at)."""
    for row in calibration["thresholds"]:
        if np.isclose(row["fmr"], fmr):
            return float(row["distance"])
    measured = [row["fmr"] for row in calibration["thresholds"]]
    raise ValueError(f"calibration has thresholds at false-match rates {measured}, not {fmr}.")


def probability(calibration, distance, metric="cosine"):
    """P(same person) of distances (`metric`: "cosine" or "euclidean" of unit rows) at an even prior."""
    knots = calibration["knots"]
    return np.interp(to_cosine(distance, metric), knots["distance"], knots["probability"])


def find(model_path):
    """The calibration of a model: its results.json's latest stage, or a calibration.json beside it; None if none.

    `model_path`: a training model_dir, a file in one (stage2.keras, an export), or a calibration /
    results JSON file itself.
    """
    path = os.path.abspath(os.path.expanduser(str(model_path)))
    if path.endswith(".json") and os.path.isfile(path):
        return from_json(path)
    folders = [path] if os.path.isdir(path) else []
    folders.append(os.path.dirname(path))
    for folder in folders:
        for name in ("calibration.json", "results.json"):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                found = from_json(candidate, required=False)
                if found is not None:
                    return found
    return None


def from_json(path, required=True):
    """The calibration in a JSON file: the dict itself, its "calibration" key, or the last stage's of a results.json."""
    with open(path) as f:
        data = json.load(f)
    found = _search(data)
    if found is None and required:
        raise ValueError(f"{path}: holds no calibration (expected 'thresholds' and 'knots', from sal-evaluate).")
    return found


def _search(data):
    if isinstance(data, dict):
        if "thresholds" in data and "knots" in data:
            return data
        if "calibration" in data:
            return _search(data["calibration"])
        stages = sorted((k for k in data if STAGE_KEY.fullmatch(str(k))), key=lambda k: int(k[5:]))
        if stages:  # a results.json: the latest trained stage (what its model_dir loads), not "untrained"
            return next((found for found in map(_search, (data[k] for k in reversed(stages))) if found), None)
        found = None
        for value in data.values():  # any other JSON: its last calibration
            found = _search(value) or found
        return found
    return None


def write(path, calibration):
    """Writes a calibration dict as JSON."""
    with open(path, "w") as f:
        json.dump(calibration, f, indent=2)


def holdout(q_feats, g_feats, q_pids, g_pids, q_cams, g_cams, fmr=1e-2):
    """Does a threshold hold on unseen people? Chosen at `fmr` on the pairs of one half of the identities
    (even / odd pids), its false-match rate measured on the other half's pairs, both ways round.

    Returns [{"chosen_on", "threshold", "measured_fmr", "different_pairs"}, ...] (two rows).
    """
    q_feats, g_feats, q_pids, g_pids, q_cams, g_cams = map(
        np.asarray, (q_feats, g_feats, q_pids, g_pids, q_cams, g_cams)
    )
    halves = []
    for parity in (0, 1):
        q, g = q_pids % 2 == parity, g_pids % 2 == parity
        halves.append(cross_camera_pairs(q_feats[q], g_feats[g], q_pids[q], g_pids[g], q_cams[q], g_cams[g])[1])
    rows = []
    for chosen, measured in ((0, 1), (1, 0)):
        t = threshold_at(halves[chosen], fmr)
        rows.append({
            "chosen_on": "even ids" if chosen == 0 else "odd ids", "threshold": round(t, 6),
            "measured_fmr": float(np.mean(halves[measured] <= t)), "different_pairs": int(len(halves[measured])),
        })  # fmt: skip
    return rows

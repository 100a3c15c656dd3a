"""Multi-camera metrics with py-motmetrics: per camera, across cameras, and the re-entries that keep their id.

* **Per camera**: IDF1 / MOTA / ID switches of `<camera>.txt` (global ids) against `gt/gt.txt`, as
  `sal-track` scores a sequence (`sal_tf.tracking.metrics`: IoU ≥ 0.5, numpy-2-safe distances).
* **Across cameras** (the DukeMTMC / AI City multi-camera protocol, Ristani et al. 2016): every
  camera's frames in one sequence (camera k's frames after camera k−1's), ground-truth ids being
  the same person in every camera, so IDF1 / IDP / IDR count a global id that changes person — or a
  person who changes id — between cameras.
* **Re-entries**: a person's *appearance* is a run of frames in one camera with no gap of more
  than `gap` seconds (`gt.txt` rows that count); every appearance after the person's first is a
  re-entry — back in the same camera (after an occlusion or an exit) or into another camera. It
  keeps its id when the global id matched to most of its boxes (IoU ≥ 0.5, Hungarian per frame) is
  the one matched to most boxes of the person's previous tracked appearance.
"""

import numpy as np

from sal_tf.tracking import metrics as single
from sal_tf.tracking import mot

KEYS = {  # motmetrics name → our key
    "idf1": "idf1",
    "idp": "idp",
    "idr": "idr",
    "mota": "mota",
    "num_switches": "id_switches",
    "num_false_positives": "false_positives",
    "num_misses": "misses",
    "num_unique_objects": "ground_truth_ids",
}
RATES = ("idf1", "idp", "idr", "mota")
REENTRY_GAP = 1.0  # seconds without a box that end an appearance


def shifted(rows, offset):
    """A copy of MOT rows with `offset` added to their frame numbers."""
    out = np.array(rows, np.float64)
    out[:, 0] += offset
    return out


def accumulators(cameras, gt, results):
    """{camera: accumulator, ..., "cross-camera": one over all frames}; `gt` / `results`: {camera: MOT rows}."""
    out, gts, hyps, offset = {}, [], [], 0
    for camera in cameras:
        if camera.name not in gt:
            continue
        out[camera.name] = single.accumulate(gt[camera.name], results[camera.name], camera.length)
        gts.append(shifted(gt[camera.name][:, :7], offset))
        hyps.append(shifted(results[camera.name][:, :7], offset))
        offset += camera.length
    if gts:
        out["cross-camera"] = single.accumulate(np.concatenate(gts), np.concatenate(hyps), offset)
    return out


def summarize(accs):
    """{name: {idf1, idp, idr, mota, id_switches, false_positives, misses, ground_truth_ids}} (plain numbers)."""
    import motmetrics

    names = list(accs)
    frame = motmetrics.metrics.create().compute_many([accs[n] for n in names], metrics=list(KEYS), names=names)
    return {str(name): {ours: _number(row[k], ours) for k, ours in KEYS.items()} for name, row in frame.iterrows()}


def _number(value, key):
    """A rate rounded (None when undefined: a camera without ground truth), or a count."""
    if key not in RATES:
        return int(value)
    return round(float(value), 6) if np.isfinite(value) else None


def _matched_ids(gt, result):
    """{(gt id, frame): result id} of a camera's boxes matched at IoU ≥ 0.5 (Hungarian per frame)."""
    from scipy.optimize import linear_sum_assignment

    out = {}
    for frame in np.unique(gt[:, 0]).astype(int):
        g, h = gt[gt[:, 0] == frame], result[result[:, 0] == frame]
        if not len(h):
            continue
        cost = single.iou_distance(mot.ltwh_to_xyxy(g[:, 2:6]), mot.ltwh_to_xyxy(h[:, 2:6]))
        rows, cols = linear_sum_assignment(np.nan_to_num(cost, nan=1e6))
        for r, c in zip(rows, cols):
            if not np.isnan(cost[r, c]):
                out[(int(g[r, 1]), frame)] = int(h[c, 1])
    return out


def appearances(cameras, gt, gap=REENTRY_GAP):
    """{person: [(camera, frames)]} in time order: runs of frames with no gap longer than `gap` s."""
    out = {}
    for camera in cameras:
        rows = gt.get(camera.name)
        if rows is None:
            continue
        for pid in np.unique(rows[:, 1]).astype(int):
            frames = np.unique(rows[rows[:, 1] == pid, 0]).astype(int)
            cuts = np.nonzero(np.diff(frames) > gap * camera.fps)[0] + 1
            for run in np.split(frames, cuts):
                out.setdefault(pid, []).append((camera, run))
    return {pid: sorted(runs, key=lambda r: r[0].seconds(r[1][0])) for pid, runs in out.items()}


def reentries(cameras, gt, results, gap=REENTRY_GAP):
    """{"all" | "same_camera" | "other_camera": {"reentries", "kept", "share"}} (see the module docstring)."""
    matched = {c.name: _matched_ids(gt[c.name], results[c.name]) for c in cameras if c.name in gt}
    counts = {kind: [0, 0] for kind in ("all", "same_camera", "other_camera")}
    for pid, runs in appearances(cameras, gt, gap).items():
        previous = None  # (camera, majority id) of the person's last tracked appearance
        for camera, frames in runs:
            ids = [matched[camera.name].get((pid, int(f))) for f in frames]
            ids = [i for i in ids if i is not None]
            majority = max(set(ids), key=ids.count) if ids else None
            if previous is not None:
                kind = "same_camera" if previous[0] == camera.name else "other_camera"
                for k in ("all", kind):
                    counts[k][0] += 1
                    counts[k][1] += int(majority == previous[1])
            if majority is not None:
                previous = (camera.name, majority)
    return {
        k: {"reentries": n, "kept": kept, "share": round(kept / n, 4) if n else None} for k, (n, kept) in counts.items()
    }

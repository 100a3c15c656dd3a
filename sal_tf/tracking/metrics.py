"""CLEAR-MOT and identity metrics of tracking results with py-motmetrics (the MOTChallenge evaluator).

IDF1 (Ristani et al. 2016: the F1 score of identity-preserving matches), MOTA (Bernardin & Stiefelhagen
2008), ID switches, fragmentations, false positives / misses, precision / recall, mostly tracked /
lost. A result box matches a ground-truth box when their IoU is at least 0.5, as in MOTChallenge.
The IoU distances are computed here: motmetrics 1.4's `distances.iou_matrix` calls `np.asfarray`,
which numpy 2 removed.
"""

import numpy as np

from sal_tf.tracking import mot

MIN_IOU = 0.5
RATES = ("idf1", "mota", "precision", "recall")  # the other metrics are counts
METRICS = {  # motmetrics name → our key
    "idf1": "idf1",
    "mota": "mota",
    "num_switches": "id_switches",
    "num_fragmentations": "fragmentations",
    "num_false_positives": "false_positives",
    "num_misses": "misses",
    "precision": "precision",
    "recall": "recall",
    "mostly_tracked": "mostly_tracked",
    "mostly_lost": "mostly_lost",
    "num_unique_objects": "ground_truth_ids",
    "num_objects": "ground_truth_boxes",
}


def iou_distance(gt_xyxy, hyp_xyxy, min_iou=MIN_IOU):
    """1 − IoU [G, H] of two box sets, NaN where the IoU is below `min_iou` (no match possible)."""
    a, b = np.asarray(gt_xyxy, np.float64).reshape(-1, 4), np.asarray(hyp_xyxy, np.float64).reshape(-1, 4)
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a, area_b = np.prod(a[:, 2:] - a[:, :2], 1), np.prod(b[:, 2:] - b[:, :2], 1)
    iou = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)
    return np.where(iou >= min_iou, 1.0 - iou, np.nan)


def accumulate(gt_rows, result_rows, num_frames):
    """A `motmetrics.MOTAccumulator` of gt rows and result rows (MOT columns, boxes ltwh) over the frames."""
    import motmetrics

    acc = motmetrics.MOTAccumulator(auto_id=True)
    gt_frames, hyp_frames = gt_rows[:, 0].astype(int), result_rows[:, 0].astype(int)
    for frame in range(1, num_frames + 1):
        g, h = gt_rows[gt_frames == frame], result_rows[hyp_frames == frame]
        distances = iou_distance(mot.ltwh_to_xyxy(g[:, 2:6]), mot.ltwh_to_xyxy(h[:, 2:6]))
        acc.update(g[:, 1].astype(int).tolist(), h[:, 1].astype(int).tolist(), distances)
    return acc


def summarize(accumulators):
    """{sequence name: {metric: value}, "OVERALL": ...} of {name: accumulator} (plain floats / ints)."""
    import motmetrics

    names = list(accumulators)
    frame = motmetrics.metrics.create().compute_many(
        [accumulators[n] for n in names], metrics=list(METRICS), names=names, generate_overall=len(names) > 1
    )
    out = {}
    for name, row in frame.iterrows():
        out[str(name)] = {ours: (round(float(row[k]), 6) if k in RATES else int(row[k])) for k, ours in METRICS.items()}
    if len(names) == 1:
        out["OVERALL"] = out[names[0]]
    return out


def evaluate_sequence(sequence, result_file, min_visibility):
    """The accumulator of a result file against a `mot.Sequence`'s gt/gt.txt (the rows `mot.ground_truth_rows` keeps)."""
    gt = mot.ground_truth_rows(mot.read_rows(sequence.file(mot.GT_FILE), "ground truth"), min_visibility)
    return accumulate(gt, mot.read_rows(result_file, "result file"), sequence.length)

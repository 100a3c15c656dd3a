"""One tracking run end to end: detections in, MOTChallenge results (+ annotated clip, + metrics) out.

Used by `sal-track` (`sal_tf/cli/track.py`) and `benchmarks/tracking.py`. `MIN_VISIBILITY`: ground-truth
boxes less visible are not evaluated (nor oracle detections, `--detections=gt`), by default.
"""

import os

from sal_tf.tracking import annotate, deepsort, metrics, mot
from sal_tf.utils.visibility import MIN_VISIBILITY

BATCH_FRAMES = 16  # frames whose boxes are embedded in one model call (`sal-track --batch_frames`)


def load_detections(source, which, min_visibility=MIN_VISIBILITY):
    """{frame: (xyxy, conf)} of `which`: "det" (the sequence's det/det.txt), "gt" (oracle: gt/gt.txt rows
    that count, `mot.ground_truth_rows`) or the path of a MOT det file (needed for a video)."""
    if which in ("det", "gt") and source.folder is None:
        raise ValueError(
            f"--detections={which} needs a MOTChallenge sequence; for the video {source.name!r} "
            "pass --detections=PATH of a det.txt (frame,-1,x,y,w,h,conf)."
        )
    if which == "gt":
        rows = mot.read_rows(source.file(mot.GT_FILE), "--detections=gt: ground truth")
        return mot.oracle_detections(mot.ground_truth_rows(rows, min_visibility))
    path = source.file(mot.DET_FILE) if which == "det" else which
    return mot.detections_of(mot.read_rows(path, "--detections file"))


def check_outputs(sources, output_dir, overwrite=False):
    """Creates `output_dir`; refuses result files that exist unless `overwrite` (before any work is done)."""
    os.makedirs(output_dir, exist_ok=True)
    for source in sources:
        path = os.path.join(output_dir, f"{source.name}.txt")
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"--output_dir: {path!r} exists; pass --overwrite to replace it.")


def run_sequence(source, appearance, settings, output_dir, detections="det", annotated=None, evaluate=True, *,
                 min_visibility=MIN_VISIBILITY, batch_frames=BATCH_FRAMES, progress=None):  # fmt: skip
    """Tracks one source; writes `<output_dir>/<name>.txt` (and the annotated clip `<name>.<annotated>`).

    Args:
        source: `mot.Sequence` or `mot.Video`.
        appearance: `sal_tf.tracking.appearance` model; settings: `deepsort.TrackerSettings`.
        detections: see `load_detections`.
        annotated: None, or "gif" / "mp4" / "avi".
        evaluate: compute the metrics when the sequence has gt/gt.txt.
        min_visibility: ground-truth boxes less visible are ignored (metrics and `detections="gt"`).
        batch_frames: frames whose boxes are embedded in one model call.
        progress: a `sal_tf.utils.progress.Progress`, or None.

    Returns:
        dict: name, frames, result file, annotated file, stats (timings), accumulator (or None).
    """
    dets = load_detections(source, detections, min_visibility)
    result_file = os.path.join(output_dir, f"{source.name}.txt")
    clip = os.path.join(output_dir, f"{source.name}.{annotated}") if annotated else None
    writer = annotate.AnnotatedWriter(clip, source.fps, source.channels) if clip else None
    rows, stats = deepsort.track(
        source,
        dets,
        appearance,
        settings,
        batch_frames,
        on_frame=(lambda n, image, tracks: writer.add(image, tracks)) if writer else None,
        progress=progress,
    )
    mot.write_results(result_file, rows)
    if writer is not None:
        writer.close()
    has_gt = source.folder is not None and os.path.isfile(source.file(mot.GT_FILE))
    accumulator = metrics.evaluate_sequence(source, result_file, min_visibility) if evaluate and has_gt else None
    return {
        "name": source.name,
        "frames": stats["frames"],
        "result_file": result_file,
        "annotated": clip,
        "stats": stats,
        "accumulator": accumulator,
    }

"""A multi-camera run end to end: cameras in; global-id results, journeys, metrics, annotated clips out.

Used by `sal-mtmc` (`sal_tf/cli/mtmc.py`) and `benchmarks/mtmc.py`. Steps: each camera through
its detector and the single-camera tracker (`tracklets.track_camera`); the tracklets linked into
global ids (`linking.link`, threshold from `choose_threshold`); `<camera>.txt`, `journeys.json`,
crops; where gt/gt.txt exists, the metrics (`metrics`); the annotated clips.
"""

import dataclasses
import json
import os
import time

import numpy as np

from sal_tf.evaluation import calibration as calibration_lib
from sal_tf.mtmc import centring, detectors, journeys, linking, metrics, tracklets, transit
from sal_tf.tracking import annotate, deepsort, mot
from sal_tf.tracking.run import BATCH_FRAMES
from sal_tf.utils.visibility import MIN_VISIBILITY

LINKS = ("all", "camera", "none")
LINK_PROBABILITY = (
    0.5  # with a calibration, tracklets are linked while P(same person) ≥ this (the even-prior decision);
)
# tuning cameras (seed 41): cross-camera IDF1 0.545 at FMR 1e-2's distance, 0.616 here (BUILD.md "Multi-camera tracking")
SPLIT_FACTOR = 2.0  # cut tracks where their appearance jumps by this × the FMR distance (an identity switch):
# tuning cameras (seeds 41/43/44/46/47, four demo trainings), re-entries kept 1,115 -> 1,170 of 1,352 against no cut
# (1.0: 1,137, 1.5: 1,152, 2.5: 1,162); see BUILD.md "Multi-camera tracking"
TRACKER_GATES = {"sal": 0.05, "histogram": 0.15}  # DeepSORT's appearance gate in sal-mtmc (`tracker_settings`)


def tracker_settings(kind, **overrides):
    """The single-camera tracker's settings in a multi-camera run: `sal-track`'s, with a stricter appearance gate.

    `sal-track`'s gates (`deepsort.SETTINGS`) were chosen for one camera's IDF1, where a take-up of a
    lost track is worth its risk; here the linking joins a person's tracklets again with every
    camera's views, and a track that switched person is what it cannot undo (tuning cameras,
    seed 41, SAL: 12 % of the tracked boxes on a track's minority person at gate 0.1, 2 % at 0.05;
    cross-camera IDF1 in BUILD.md "Multi-camera tracking").
    """
    return deepsort.settings_for(kind, **{"max_cosine_distance": TRACKER_GATES.get(kind), **overrides})


@dataclasses.dataclass
class Options:
    """How tracklets are linked and what is written (see `sal-mtmc --help`)."""

    link: str = "all"
    threshold: float | None = None  # None: from the calibration (or the observed pairs)
    fmr: float = 1e-2
    probability: float | None = LINK_PROBABILITY  # link at the calibrated P(same) ≥ this; None: at the FMR distance
    calibration: dict | None = None
    transit: dict = dataclasses.field(default_factory=dict)
    relink_gap: float = linking.DEFAULT_RELINK_GAP
    split_factor: float | None = SPLIT_FACTOR  # see SPLIT_FACTOR
    lost_seconds: float = tracklets.LOST_SECONDS  # tracks cut where unseen for longer (`tracklets.split_gaps`)
    min_boxes: int = linking.MIN_BOXES  # shorter tracklets attach after the clustering (`linking.attach`)
    learn_transit: bool = True  # cluster again with transit times learned from the first clustering (`transit`)
    camera_centring: bool = True  # link on features with each camera's mean taken out (`centring`)
    detections: str = "det"
    min_visibility: float = MIN_VISIBILITY
    batch_frames: int = BATCH_FRAMES
    threads: int | None = None
    annotate: str | None = "mp4"
    crops: bool = True
    store: str | None = None  # a gallery store location: every tracklet is added to it (`sal_tf.mtmc.store`)
    store_run: str | None = None  # the run's name in the store's ids (default: the output folder's name)


def choose_threshold(found, options, factor=1.0):
    """(threshold, how it was chosen) of a run: --threshold, the model's calibration, or the observed pairs.

    `factor`: the distance scale of `found`'s features against the model's raw embeddings
    (`centring.camera_centred`); the calibration's distances are multiplied by it, the observed pairs
    are measured on `found` itself, and --threshold is taken as a distance of `found` as it is.
    """
    if options.link == "none":
        return None, "no linking"
    if options.threshold is not None:
        return options.threshold, "--threshold"
    if options.calibration is not None:
        distance = calibration_lib.threshold(options.calibration, options.fmr) * factor
        return distance, _scaled(f"calibration at FMR {options.fmr:g}", factor)
    observed = linking.observed_threshold(found, options.fmr)
    if observed is None:
        raise ValueError(
            "no threshold: the model has no calibration (run sal-evaluate, or pass --calibration / --threshold) "
            "and too few tracklets of two cameras at once to measure one."
        )
    return observed, f"observed cross-camera pairs at FMR {options.fmr:g}"


def _scaled(how, factor):
    return how if factor == 1.0 else f"{how} x {factor:.3f} (camera-centred features)"


def probability_distance(calibration, probability):
    """The largest cosine distance whose calibrated P(same person) is still ≥ `probability` (a knot of its map)."""
    knots = calibration["knots"]
    distance, p = np.asarray(knots["distance"], np.float64), np.asarray(knots["probability"], np.float64)
    above = np.nonzero(p >= probability)[0]
    return float(distance[above.max()] if len(above) else distance[0])


def link_threshold(split_threshold, how, options, factor=1.0):
    """(linking threshold, how): with a calibration and `options.probability`, the distance where P(same) falls
    below it (× `factor`, see `choose_threshold`; never under `split_threshold`, the FMR distance); else the split
    threshold itself."""
    if split_threshold is None or options.threshold is not None or options.calibration is None:
        return split_threshold, how
    if options.probability is None or "knots" not in options.calibration:
        return split_threshold, how
    distance = max(split_threshold, probability_distance(options.calibration, options.probability) * factor)
    return round(distance, 6), f"calibration at P(same) >= {options.probability:g} (not below the {how})"


def track_cameras(cameras, appearance, settings, options, progress=None):
    """All cameras' tracklets (one list) and {camera: stats}."""
    found, stats = [], {}
    for camera in cameras:
        detector = detectors.detector_for(options.detections, camera, options.min_visibility, options.threads)
        step = None if progress is None else (lambda n, image, reported: progress.update(progress.step + 1))
        camera_tracklets, stats[camera.name] = tracklets.track_camera(
            camera, detector, appearance, settings, options.batch_frames, on_frame=step
        )
        found += camera_tracklets
    return found, stats


def ground_truth(cameras, min_visibility):
    """{camera: gt rows that count} of the cameras with gt/gt.txt."""
    out = {}
    for camera in cameras:
        if camera.source.folder is not None and os.path.isfile(camera.source.file(mot.GT_FILE)):
            rows = mot.read_rows(camera.source.file(mot.GT_FILE), "ground truth")
            out[camera.name] = mot.ground_truth_rows(rows, min_visibility)
    return out


def evaluate(cameras, results, min_visibility):
    """The metrics dict (per camera, cross-camera, re-entries), or None without ground truth."""
    gt = ground_truth(cameras, min_visibility)
    if not gt:
        return None
    timed = [c for c in cameras if c.name in gt]
    summary = metrics.summarize(metrics.accumulators(timed, gt, results))
    return {"cameras": {c.name: summary[c.name] for c in timed}, "cross_camera": summary["cross-camera"],
            "reentries": metrics.reentries(timed, gt, results)}  # fmt: skip


def write_clips(cameras, found, ids, output_dir, kind):
    """One annotated clip per camera (`<camera>.<kind>`), boxes labelled with their global id."""
    paths = {}
    for camera in cameras:
        path = os.path.join(output_dir, f"{camera.name}.{kind}")
        writer, boxes = annotate.AnnotatedWriter(path, camera.fps, camera.source.channels), None
        boxes = journeys.frames_of(found, ids, camera.name)
        for number, image in camera.source.frames():
            writer.add(image, boxes.get(number, []))
        writer.close()
        paths[camera.name] = path
    return paths


def link_tracklets(found, options):
    """(tracklets, groups of their indices, threshold, how it was chosen): tracks cut where they went unseen for
    longer than `options.lost_seconds` (`tracklets.split_gaps`) and, with `options.split_factor`, where their
    appearance jumps (`tracklets.split`, at that × the FMR threshold of `choose_threshold`), then linked
    (`linking.link`) at `link_threshold`, twice with `options.learn_transit` (`transit_learning`). With
    `options.camera_centring` the linking sees `centring.camera_centred` features and every distance of the
    calibration scaled by its factor; the tracklets returned keep the model's own embeddings."""
    cut, how = choose_threshold(found, options)
    if cut is not None:
        found = [part for t in found for part in tracklets.split_gaps(t, options.lost_seconds)]
        if options.split_factor:
            found = [part for t in found for part in tracklets.split(t, options.split_factor * cut)]
        found = tracklets.renumbered(found)
    linked, factor = found, 1.0
    if cut is not None and options.camera_centring:
        linked, factor = centring.camera_centred(found)
        cut, how = choose_threshold(linked, options, factor)
    threshold, how = link_threshold(cut, how, options, factor)
    learning = transit_learning(linked, cut, options, factor) if threshold is not None else None
    groups = linking.link(
        linked, threshold, options.transit, options.relink_gap, options.link == "all", options.min_boxes, learning
    )
    return found, groups, threshold, how


def transit_learning(found, confident, options, factor=1.0):
    """The `transit.Learning` of a run (None when off): samples from links closer than `confident` (the FMR
    distance); log-odds worth the calibration's distance per unit (`transit.log_odds_scale`, × `factor` as in
    `choose_threshold`), or without one that of the run's own pairs known to be two people
    (`transit.observed_scale`)."""
    if not options.learn_transit or options.link != "all":
        return None
    scale = transit.log_odds_scale(options.calibration)
    if scale is None:
        scale = transit.observed_scale(linking.known_different(found), options.fmr)
    else:
        scale *= factor
    return None if scale is None else transit.Learning(confident, scale)


def run_cameras(cameras, appearance, settings, output_dir, options, progress=None, info=None):
    """Runs everything (see the module docstring); returns the report (`info` added) written to metrics.json / run.json."""
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    found, stats = track_cameras(cameras, appearance, settings, options, progress)
    tracked = time.perf_counter()
    found, groups, threshold, how = link_tracklets(found, options)
    ids = journeys.global_ids(groups, found)
    linked = time.perf_counter()
    results = journeys.write_results(output_dir, cameras, found, ids)
    people = journeys.journeys(groups, found, cameras, output_dir if options.crops else None)
    with open(os.path.join(output_dir, "journeys.json"), "w") as f:
        json.dump({"global_ids": len(groups), "journeys": people}, f, indent=2)
    frames = sum(s["frames"] for s in stats.values())
    report = {
        **(info or {}),
        "cameras": [c.name for c in cameras], "frames": frames, "tracks": sum(s["tracks"] for s in stats.values()),
        "tracklets": len(found), "global_ids": len(groups),
        "link": options.link, "threshold": threshold, "threshold_from": how, "transit": _windows(options.transit),
        "seconds": {"tracking": round(tracked - start, 3), "linking": round(linked - tracked, 3)},
        "frames_per_second": round(frames / max(linked - start, 1e-9), 2), "per_camera": stats,
    }  # fmt: skip
    if options.store:
        from sal_tf.mtmc import store

        name = options.store_run or os.path.basename(os.path.abspath(output_dir))
        model = (info or {}).get("model")
        added = store.add_tracklets(options.store, found, ids, cameras, output_dir, name, model)
        report["store"] = {"location": options.store, "run": name, "items": added}
    report["metrics"] = evaluate(cameras, results, options.min_visibility)
    if options.annotate:
        report["annotated"] = write_clips(cameras, found, ids, output_dir, options.annotate)
    with open(os.path.join(output_dir, "metrics.json" if report["metrics"] else "run.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report


def _windows(transit):
    return {f"{a}:{b}": list(w) for (a, b), w in transit.items() if a < b}


def check_outputs(cameras, output_dir, overwrite=False):
    """Refuses existing result files in `output_dir` unless `overwrite` (before any work is done)."""
    names = [f"{c.name}.txt" for c in cameras] + ["journeys.json"]
    existing = [n for n in names if os.path.exists(os.path.join(output_dir, n))]
    if existing and not overwrite:
        raise FileExistsError(
            f"--output_dir {output_dir!r} already holds {existing}; pass --overwrite to replace them."
        )

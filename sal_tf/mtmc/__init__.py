"""Multi-camera tracking: several cameras' video in, one global identity per person out (`sal-mtmc`).

The pipeline (`sal_tf.mtmc.run.run_cameras`, BUILD.md "Multi-camera tracking"):

* `sources`: the cameras — MOTChallenge sequence folders or video files — and their clocks
  (`startTime` of seqinfo.ini, or `--start_times`), checked before any work;
* `detectors`: the boxes of each frame — det/gt files, OpenCV's HOG people detector, a user's ONNX
  detector (`[N, 6]` x1, y1, x2, y2, score, class);
* `tracklets`: the single-camera tracker (`sal_tf.tracking.deepsort`, a stricter appearance gate:
  `run.tracker_settings`) per camera, tracks cut where lost for > 2 s, each one's embedding pooled
  over its boxes weighted by quality, a few representative crops;
* `centring`: each camera's mean tracklet embedding taken out before linking (its light and colour
  cast), the calibration's distances scaled to match;
* `linking`: tracklets clustered into global ids under hard constraints (never two places at once,
  never two tracks of one camera at the same time, optional transit windows), one clustering of all
  cameras' tracklets (a person back after a long occlusion or exit, in the same camera or another),
  tracklets of few boxes attached to a group afterwards;
* `transit`: the cameras' transit times learned from that clustering's confident links, with which
  the tracklets are clustered again (consistent journeys relaxed, inconsistent ones tightened);
* `journeys`: each global id's appearances through the cameras (`journeys.json`, crops);
* `metrics`: per-camera IDF1 / MOTA / ID switches and the cross-camera IDF1 / IDP / IDR, with
  py-motmetrics; the share of re-entries that keep their id.

The decision threshold comes from the model's calibration (`sal_tf.evaluation.calibration`): tracklets
are linked while their calibrated P(same person) ≥ 0.5 (and at least at the distance of FMR 1e-2).
Nothing is imported by `import sal_tf.mtmc`.
"""

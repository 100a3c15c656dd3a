"""Multi-object tracking with SAL as the appearance model (command `sal-track`, `sal_tf/cli/track.py`).

* `sal_tf.tracking.mot`: MOTChallenge sequence folders, det / gt / result files, video files.
* `sal_tf.tracking.appearance`: the appearance models compared — none ("iou"), colour histograms,
  SAL embeddings of the boxes (`sal_tf.inference.boxes.BoxEncoder`).
* `sal_tf.tracking.deepsort`: DeepSORT (`deep_sort_realtime`, the `track` extra) fed those rows, and
  the per-appearance settings.
* `sal_tf.tracking.metrics`: IDF1, MOTA, ID switches with py-motmetrics.
* `sal_tf.tracking.annotate`: boxes with track ids on the frames, as a GIF or a video.
* `sal_tf.tracking.run`: one sequence end to end (the command and `benchmarks/tracking.py`).

Nothing here is imported by `import sal_tf.tracking`; the optional libraries (deep_sort_realtime,
motmetrics, OpenCV) are imported where they are used.
"""

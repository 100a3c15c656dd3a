"""`sal-mtmc` end to end on small generated cameras, and its detectors (det files, HOG, a user's ONNX detector)."""

import datetime
import json
import os
import sys

import numpy as np
import pytest

from sal_tf.mtmc import detectors, sources
from sal_tf.tracking import mot
from tests.conftest import MTMC_FRAMES as FRAMES
from tests.conftest import MTMC_SIZE as SIZE
from tests.conftest import run_cmd


def _mtmc(mtmc_cameras, out, *extra):
    cmd = [sys.executable, "-m", "sal_tf.cli.mtmc", f"--source={mtmc_cameras}", f"--output_dir={out}", "--noprogress"]
    return run_cmd(cmd + list(extra), timeout=300)


@pytest.mark.slow
def test_histogram_pipeline_writes_global_ids_journeys_and_metrics(mtmc_cameras, tmp_path):
    out = tmp_path / "out"
    result = _mtmc(
        mtmc_cameras, out, "--tracker=histogram", "--annotate=gif", "--transit=c1:c2:1:60", "--threshold=0.3"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cross-camera" in result.stdout and "re-entries (all)" in result.stdout
    rows = {c: mot.read_rows(str(out / f"{c}.txt")) for c in ("c1", "c2")}
    assert all(r.shape[1] == 10 and (r[:, 7:] == -1).all() and len(r) for r in rows.values())
    journeys = json.load(open(out / "journeys.json"))["journeys"]
    by_id = {j["global_id"]: j for j in journeys}
    for camera, r in rows.items():  # every id of a result file is a journey that passes through that camera
        assert all(camera in by_id[int(i)]["cameras"] for i in np.unique(r[:, 1]))
    for j in journeys:
        a = j["appearances"]
        assert [x["start_seconds"] for x in a] == sorted(x["start_seconds"] for x in a)
        assert a[0]["start_time"].startswith("2026-03-02T09:00") and os.path.isfile(out / a[0]["crop"])
        for x, y in zip(a, a[1:]):  # one person is never in two places at once
            assert x["camera"] == y["camera"] or y["start_seconds"] > x["end_seconds"]
    report = json.load(open(out / "metrics.json"))
    assert report["tracker"] == "histogram" and report["transit"] == {"c1:c2": [1.0, 60.0]}
    assert report["threshold"] == 0.3 and report["threshold_from"] == "--threshold"
    m = report["metrics"]
    assert set(m["cameras"]) == {"c1", "c2"} and 0 < m["cross_camera"]["idf1"] <= 1
    assert m["cross_camera"]["ground_truth_ids"] == 4 and m["reentries"]["other_camera"]["reentries"] >= 2
    from PIL import Image

    with Image.open(out / "c2.gif") as gif:
        assert gif.n_frames == FRAMES and gif.size == SIZE[::-1]
    again = _mtmc(mtmc_cameras, out, "--tracker=histogram")
    assert again.returncode != 0 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


def test_no_linking_keeps_each_cameras_tracks_apart_and_a_threshold_is_needed(mtmc_cameras, tmp_path):
    from sal_tf.mtmc import run
    from sal_tf.tracking import appearance, deepsort

    cameras, _ = sources.open_cameras(mtmc_cameras)
    options = run.Options(link="none", annotate=None, store=str(tmp_path / "store"), store_run="r1")
    model, settings = appearance.HistogramAppearance(), deepsort.settings_for("histogram")
    report = run.run_cameras(cameras, model, settings, str(tmp_path), options)
    ids = [set(mot.read_rows(str(tmp_path / f"{c}.txt"))[:, 1].astype(int)) for c in ("c1", "c2")]
    assert ids[0] and ids[1] and not ids[0] & ids[1] and report["global_ids"] == report["tracklets"]
    from sal_tf.gallery import open_store

    journeys = json.load(open(tmp_path / "journeys.json"))["journeys"]
    first = journeys[0]["appearances"][0]
    with open_store(str(tmp_path / "store")) as store:  # every tracklet, searchable, with its global id
        assert store.count() == report["store"]["items"] == report["tracklets"] and store.dim == model.dim
        item = store.get(f"r1/{first['camera']}/{first['track']}")
        assert item.person_id == journeys[0]["global_id"] and item.camera == int(first["camera"][1:])
        assert item.path.endswith(first["crop"]) and os.path.isfile(item.path)
        start = sources.parse_time(first["start_time"], "").replace(tzinfo=datetime.UTC)
        assert item.timestamp == pytest.approx(start.timestamp(), abs=1e-3)
    found, _ = run.track_cameras(cameras[:1], model, settings, options)
    with pytest.raises(ValueError, match="no threshold: the model has no calibration"):
        run.choose_threshold(found, run.Options())  # one camera: no pairs of two cameras at once


@pytest.mark.slow
def test_sal_pipeline_with_a_trained_model(mtmc_cameras, trained_run, tmp_path):
    result = _mtmc(mtmc_cameras, tmp_path, f"--model={trained_run['run_dir']}", "--annotate=none", "--detections=gt")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.load(open(tmp_path / "metrics.json"))
    assert report["tracker"] == "sal" and report["threshold_from"].startswith("calibration at P(same) >= 0.5")
    assert report["metrics"]["cameras"]["c1"]["false_positives"] == 0  # oracle boxes
    assert 0 < report["global_ids"] <= report["tracklets"]


def test_bad_input_is_named_without_a_traceback(mtmc_cameras, tmp_path):
    result = _mtmc(mtmc_cameras, tmp_path, "--tracker=histogram", "--transit=c1:c7:1:5")
    assert result.returncode != 0 and "--transit names ['c7']" in result.stderr and "Traceback" not in result.stderr


def _onnx_detector(path, rows, size=(64, 96)):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    value = numpy_helper.from_array(np.asarray(rows, np.float32), "rows")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["boxes"], value=value)],
        "detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *size])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, None)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


def test_detectors_onnx_hog_and_det_files(mtmc_cameras, tmp_path):
    (camera, *_), _ = sources.open_cameras(mtmc_cameras)
    rows = [[10, 8, 30, 56, 0.9, 0], [40, 8, 60, 56, 0.2, 0], [50, 8, 70, 56, 0.8, 2]]  # kept / low score / a car
    onnx_path = _onnx_detector(tmp_path / "det.onnx", rows)
    (boxes, scores), *_ = detectors.detector_for(onnx_path, camera, 0.3).detect([1], [np.zeros((*SIZE, 3), np.uint8)])
    np.testing.assert_allclose(boxes, [[10 * 160 / 96, 8 * 90 / 64, 30 * 160 / 96, 56 * 90 / 64]], rtol=1e-5)
    assert scores.tolist() == pytest.approx([0.9])
    wrong = detectors.detector_for(_onnx_detector(tmp_path / "wrong.onnx", [[1, 2, 3, 4, 0.9]]), camera, 0.3)
    with pytest.raises(ValueError, match=r"wrong\.onnx: expected the first output \[N, 6\] .*got shape \[1, 5\]"):
        wrong.detect([1], [np.zeros((*SIZE, 3), np.uint8)])
    det = detectors.detector_for("det", camera, 0.3).detect([1, 2], [None, None])
    assert len(det) == 2 and det[0][0].shape[1] == 4
    short = tmp_path / "short.txt"
    short.write_text("1,-1,10,10,20\n")
    with pytest.raises(ValueError, match=r"short\.txt:1: expected at least frame,id,x,y,w,h"):
        mot.read_rows(str(short))
    with pytest.raises(ValueError, match="--detections must be det, gt, hog or the path of an .onnx"):
        detectors.detector_for("yolo", camera, 0.3)


@pytest.fixture(scope="module")
def hog_cameras(tmp_path_factory):
    """2 generated cameras × 30 frames at 240×320: people ~110 px tall, some tall enough for HOG's 64×128 window."""
    from sal_tf.data import demo_cameras

    root = str(tmp_path_factory.mktemp("hog_cameras"))
    demo_cameras.generate_cameras(root, seed=2, cameras=2, frames=30, people=4, size=(240, 320), verbose=False)
    return root


def test_hog_detector_contract(hog_cameras):
    """OpenCV 4's HOG people detector (requirements-track.txt pins opencv-python<5): one (xyxy, score) per frame."""
    (camera, *_), _ = sources.open_cameras(hog_cameras)
    frames = [image for _, image in camera.source.frames()][:9:3]
    frames = frames + [np.asarray(np.kron(f, np.ones((2, 2, 1))), np.uint8) for f in frames]  # taller people
    numbers = list(range(1, len(frames) + 1))
    everything = detectors.HOGDetector(min_score=0.0).detect(numbers, frames)
    assert len(everything) == len(frames) and sum(len(b) for b, _ in everything) >= 1
    for min_score in (0.0, 0.3, 1e9):  # 1e9: NMS keeps nothing (it returns an empty tuple)
        found = everything if min_score == 0 else detectors.HOGDetector(min_score=min_score).detect(numbers, frames)
        for image, (boxes, scores) in zip(frames, found):
            height, width = image.shape[:2]
            assert boxes.dtype == np.float64 and boxes.shape == (len(scores), 4) and scores.ndim == 1
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
            assert (boxes[:, 2:] > boxes[:, :2]).all() and ((scores >= 0) & (scores < 1)).all()
            assert min_score < 1e9 or not len(boxes)
    assert isinstance(detectors.detector_for("hog", camera, 0.3), detectors.HOGDetector)


def test_command_with_hog_detections(hog_cameras, tmp_path):
    result = _mtmc(hog_cameras, tmp_path, "--tracker=histogram", "--threshold=0.3", "--detections=hog",
                   "--annotate=none")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert all((tmp_path / f).is_file() for f in ("c1.txt", "c2.txt", "journeys.json"))
    report = json.load(open(tmp_path / "metrics.json"))
    assert report["detections"] == "hog" and report["frames"] == 60
    assert report["metrics"]["cross_camera"]["ground_truth_ids"] > 0
    for camera, stats in report["per_camera"].items():  # the HOG boxes ran through the tracker; tracks report ≤ them
        assert stats["frames"] == 30 and len(mot.read_rows(str(tmp_path / f"{camera}.txt"))) <= stats["boxes"]


def test_video_cameras_with_det_files_and_start_times(mtmc_cameras, tmp_path):
    import cv2

    from sal_tf.mtmc import run
    from sal_tf.tracking import appearance, deepsort

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("c1", "c2"):
        sequence = mot.Sequence(os.path.join(mtmc_cameras, name))
        writer = cv2.VideoWriter(str(videos / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE[::-1])
        for _, image in sequence.frames():
            writer.write(image[..., ::-1])
        writer.release()
        (videos / f"{name}.txt").write_text(open(sequence.file(mot.DET_FILE)).read())
    with pytest.raises(ValueError, match=r"--detections=gt needs a sequence folder's gt/gt.txt; .*c1\.avi' is a video"):
        detectors.detector_for("gt", sources.open_cameras(str(videos))[0][0], 0.3)
    times = sources.parse_start_times("c2:2026-03-02T09:00:03,c1:2026-03-02T09:00:00")
    cameras, warnings = sources.open_cameras(str(videos), times)
    assert [c.name for c in cameras] == ["c1", "c2"] and warnings == [] and cameras[1].offset == 3.0
    assert cameras[0].source.channels == "bgr" and cameras[0].length == FRAMES
    options = run.Options(link="all", threshold=0.3, annotate="avi", crops=True)
    report = run.run_cameras(cameras, appearance.HistogramAppearance(), deepsort.settings_for("histogram"),
                             str(tmp_path / "out"), options)  # fmt: skip
    assert report["metrics"] is None and report["frames"] == 2 * FRAMES and (tmp_path / "out" / "run.json").exists()
    journeys = json.load(open(tmp_path / "out" / "journeys.json"))["journeys"]
    assert journeys and journeys[0]["first_seen"].startswith("2026-03-02T09:00:0")
    assert os.path.getsize(tmp_path / "out" / "c2.avi") > 0

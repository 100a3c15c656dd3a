"""Tracking: the generated MOTChallenge sequences, the tracker with its appearance models, the metrics, `sal-track`."""

import json
import os
import sys

import numpy as np
import pytest

from sal_tf.data import demo_sequences
from sal_tf.tracking import appearance, deepsort, metrics, mot, run
from tests.conftest import run_cmd

FRAMES = 30


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """One camera, 30 frames, 4 people (a few seconds to render)."""
    root = str(tmp_path_factory.mktemp("sequences"))
    (folder,) = demo_sequences.generate_sequences(
        root, seed=5, scenes=1, cameras=1, frames=FRAMES, people=4, verbose=False
    )
    return mot.Sequence(folder)


def test_generated_sequence_is_in_motchallenge_layout(sequence):
    assert (sequence.name, sequence.length, sequence.size, sequence.fps) == ("S01-c1", FRAMES, (240, 320), 15.0)
    assert sorted(os.listdir(sequence.image_dir)) == [f"{i:06d}.jpg" for i in range(1, FRAMES + 1)]
    gt = mot.read_rows(sequence.file(mot.GT_FILE))
    det = mot.read_rows(sequence.file(mot.DET_FILE))
    assert gt.shape[1] == 9 and det.shape[1] == 10 and len(gt) > FRAMES  # several people per frame
    assert set(np.unique(gt[:, 1]).astype(int)) <= set(range(101, 105)) and (gt[:, 6:8] == 1).all()
    assert ((gt[:, 8] > 0) & (gt[:, 8] <= 1)).all() and (gt[:, 2:4] >= 0).all()
    assert (gt[:, 2] + gt[:, 4] <= 320.01).all() and (gt[:, 3] + gt[:, 5] <= 240.01).all()  # clipped to the frame
    assert (det[:, 1] == -1).all() and len(det) <= (gt[:, 8] >= demo_sequences.MIN_VISIBILITY).sum()
    frame, image = next(sequence.frames())
    assert frame == 1 and image.shape == (240, 320, 3) and image.dtype == np.uint8 and image.std() > 10


def test_same_seed_same_sequence(sequence, tmp_path):
    (again,) = demo_sequences.generate_sequences(
        str(tmp_path), seed=5, scenes=1, cameras=1, frames=FRAMES, people=4, verbose=False
    )
    for relative in (mot.GT_FILE, mot.DET_FILE, os.path.join("img1", "000017.jpg")):
        assert open(sequence.file(relative), "rb").read() == open(os.path.join(again, relative), "rb").read()


def test_metrics_of_perfect_and_swapped_tracks(sequence, tmp_path):
    gt = mot.ground_truth_rows(mot.read_rows(sequence.file(mot.GT_FILE)), demo_sequences.MIN_VISIBILITY)
    perfect = metrics.summarize({"s": metrics.accumulate(gt, gt[:, :7], FRAMES)})["s"]
    assert perfect["idf1"] == 1.0 and perfect["mota"] == 1.0 and perfect["id_switches"] == 0
    assert perfect["ground_truth_ids"] == len(np.unique(gt[:, 1]))
    swapped = gt[:, :7].copy()
    late = swapped[:, 0] > FRAMES // 2
    a, b = sorted(set(gt[late, 1]) & set(gt[~late, 1]))[:2]  # two people seen before and after the swap
    swapped[late & (gt[:, 1] == a), 1], swapped[late & (gt[:, 1] == b), 1] = b, a
    broken = metrics.summarize({"s": metrics.accumulate(gt, swapped, FRAMES)})["s"]
    assert broken["id_switches"] == 2 and broken["idf1"] < 1.0 and broken["mota"] < 1.0
    assert np.isnan(metrics.iou_distance([[0, 0, 10, 10]], [[5, 0, 15, 10]]))[0, 0]  # IoU 1/3 < 0.5
    np.testing.assert_allclose(metrics.iou_distance([[0, 0, 10, 10]], [[1, 0, 11, 10]]), [[1 - 9 / 11]])


def test_appearance_models_give_unit_rows_and_zero_rows_without_area(sequence):
    _, image = next(sequence.frames())
    boxes = np.array([[10, 20, 60, 140], [100, 50, 150, 200], [400, 0, 450, 50]])
    hist = appearance.HistogramAppearance().embed_frames([image], [boxes])[0]
    assert hist.shape == (3, appearance.HistogramAppearance.dim) and not hist[2].any()
    np.testing.assert_allclose(np.linalg.norm(hist[:2], axis=1), 1.0, atol=1e-6)
    assert hist[0] @ hist[1] < 0.999  # different content, different histograms
    np.testing.assert_allclose(
        appearance.HistogramAppearance().embed_frames([image[..., ::-1]], [boxes], "bgr")[0], hist
    )
    assert appearance.NoAppearance().embed_frames([image], [boxes])[0].tolist() == [[1.0], [1.0], [0.0]]
    with pytest.raises(ValueError, match="--tracker=sal needs --model"):
        appearance.appearance_model("sal")


def test_histogram_tracker_on_oracle_boxes_and_results_file(sequence, tmp_path):
    model = appearance.appearance_model("histogram")
    done = run.run_sequence(sequence, model, deepsort.SETTINGS["histogram"], str(tmp_path), "gt", "gif")
    rows = mot.read_rows(done["result_file"])
    assert done["frames"] == FRAMES and rows.shape[1] == 10 and (rows[:, 7:] == -1).all()
    assert set(rows[:, 0]) <= set(range(1, FRAMES + 1)) and (rows[:, 1] >= 1).all() and (rows[:, 4:6] > 0).all()
    summary = metrics.summarize({sequence.name: done["accumulator"]})[sequence.name]
    assert summary["idf1"] > 0.6 and summary["false_positives"] == 0  # oracle boxes: only identity errors
    from PIL import Image

    with Image.open(done["annotated"]) as gif:
        assert gif.n_frames == FRAMES and gif.size == (320, 240)


def test_video_file_with_a_det_file(sequence, tmp_path):
    import cv2

    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 15, (320, 240))
    for _, image in sequence.frames():
        writer.write(image[..., ::-1])
    writer.release()
    (video,) = mot.open_sources(path)
    assert (video.channels, video.length, video.size) == ("bgr", FRAMES, (240, 320))
    with pytest.raises(ValueError, match="pass --detections=PATH"):
        run.load_detections(video, "det")
    done = run.run_sequence(
        video, appearance.NoAppearance(), deepsort.SETTINGS["iou"], str(tmp_path), sequence.file(mot.DET_FILE)
    )
    assert done["frames"] == FRAMES and done["accumulator"] is None and len(mot.read_rows(done["result_file"])) > FRAMES


def test_existing_results_are_kept(sequence, tmp_path):
    run.check_outputs([sequence], str(tmp_path / "out"))
    (tmp_path / "out" / "S01-c1.txt").write_text("1,1,0,0,10,20,1,-1,-1,-1\n")
    with pytest.raises(FileExistsError, match=r"--output_dir: .*S01-c1\.txt' exists; pass --overwrite"):
        run.check_outputs([sequence], str(tmp_path / "out"))
    run.check_outputs([sequence], str(tmp_path / "out"), overwrite=True)


def test_bad_files_are_named(tmp_path):
    bad = tmp_path / "det.txt"
    bad.write_text("1,-1,10,10,20,40,0.9\n2,-1,ten,10,20,40,0.9\n")
    with pytest.raises(ValueError, match=r"det\.txt:2: expected comma-separated numbers"):
        mot.read_rows(str(bad))
    with pytest.raises(ValueError, match="holds no seqinfo.ini"):
        mot.open_sources(str(tmp_path))


@pytest.mark.slow
def test_sal_track_command_end_to_end(sequence, trained_run, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sal_tf.cli.track", f"--source={sequence.folder}", f"--model={trained_run['run_dir']}"]
    result = run_cmd(cmd + [f"--output_dir={out}", "--detections=gt", "--annotate=none", "--noprogress"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "S01-c1: 30 frames" in result.stdout and "idf1" in result.stdout
    rows = [line.split(",") for line in open(out / "S01-c1.txt").read().splitlines()]
    assert rows and all(len(r) == 10 and r[7:] == ["-1", "-1", "-1"] for r in rows)
    report = json.load(open(out / "metrics.json"))
    assert report["tracker"] == "sal" and report["settings"] == vars(deepsort.SETTINGS["sal"])
    assert 0.0 <= report["metrics"]["S01-c1"]["idf1"] <= 1.0 and report["metrics"]["S01-c1"]["false_positives"] == 0

"""Multi-camera input: the generated cameras (`sal_tf.data.demo_cameras`) and `sal_tf.mtmc.sources` (clocks, bad input)."""

import datetime
import json
import os
import shutil

import numpy as np
import pytest

from sal_tf.data import demo_cameras
from sal_tf.mtmc import sources
from sal_tf.tracking import mot
from tests.conftest import MTMC_FRAMES as FRAMES


def test_generated_cameras_share_identities_and_have_start_times(mtmc_cameras):
    index = json.load(open(os.path.join(mtmc_cameras, "cameras.json")))
    assert sorted(index["cameras"]) == ["c1", "c2"]
    c1, c2 = (mot.read_rows(os.path.join(mtmc_cameras, c, mot.GT_FILE)) for c in ("c1", "c2"))
    shared = set(c1[:, 1].astype(int)) & set(c2[:, 1].astype(int))
    assert len(shared) >= 2 and shared <= set(range(1, 5))  # the same ids walk through both cameras
    for pid in shared:  # in order: camera 1 first, then camera 2, later on the common clock
        start1, start2 = (sources.parse_time(index["cameras"][c]["start_time"], c) for c in ("c1", "c2"))
        leave1 = start1 + datetime.timedelta(seconds=(c1[c1[:, 1] == pid, 0].max() - 1) / demo_cameras.FPS)
        enter2 = start2 + datetime.timedelta(seconds=(c2[c2[:, 1] == pid, 0].min() - 1) / demo_cameras.FPS)
        assert enter2 > leave1
    cast = [np.array(index["cameras"][c]["white_balance"]) for c in ("c1", "c2")]
    assert np.abs(cast[0] - cast[1]).max() > 0.2  # white balance spread warm <-> cool across the cameras
    (camera, *_), warnings = sources.open_cameras(mtmc_cameras)
    assert warnings == [] and camera.name == "c1" and camera.fps == demo_cameras.FPS and camera.length == FRAMES
    assert camera.wall_time(11) == "2026-03-02T09:00:01.000"


def test_shared_garment_colours_make_colour_alone_ambiguous():
    rng = np.random.default_rng(0)
    people = demo_cameras.scene_people(rng, 40)
    uppers = {tuple(np.round(p["upper"], 4)) for p in people.values()}
    assert len(uppers) < 30  # about half wear someone else's colours
    twins = [(a, b) for a in people for b in people if a < b and np.allclose(people[a]["upper"], people[b]["upper"])]
    assert any(people[a]["pattern"] != people[b]["pattern"] or people[a]["bag"] != people[b]["bag"] for a, b in twins)


def test_cameras_are_ordered_by_start_time_and_start_times_override(mtmc_cameras, tmp_path):
    for name in ("b_first", "a_second"):
        shutil.copytree(os.path.join(mtmc_cameras, "c1"), tmp_path / name)
    times = sources.parse_start_times("a_second:2026-03-02T09:00:05+00:00,b_first:2026-03-02T09:00:00")
    cameras, _ = sources.open_cameras(str(tmp_path), times)
    assert [c.name for c in cameras] == ["b_first", "a_second"] and cameras[1].offset == 5.0
    with pytest.raises(ValueError, match=r"--start_times names \['nope'\]"):
        sources.open_cameras(str(tmp_path), {"nope": times["b_first"]})
    with pytest.raises(ValueError, match="--start_times b: 'yesterday' is not an ISO 8601 time"):
        sources.parse_start_times("b:yesterday")


def _copy_camera(mtmc_cameras, root, name="c1"):
    shutil.copytree(os.path.join(mtmc_cameras, name), root / name)
    return root / name


def test_missing_start_time_orders_cameras_by_name_with_a_warning(mtmc_cameras, tmp_path):
    for name in ("c2", "c1"):
        folder = _copy_camera(mtmc_cameras, tmp_path, name)
        text = (folder / "seqinfo.ini").read_text()
        if name == "c2":
            (folder / "seqinfo.ini").write_text(
                "\n".join(line for line in text.splitlines() if "startTime" not in line)
            )
    cameras, warnings = sources.open_cameras(str(tmp_path))
    assert [c.name for c in cameras] == ["c1", "c2"] and len(warnings) == 1
    assert "no start time for c2" in warnings[0] and "ordered by name" in warnings[0]
    assert cameras[1].offset == pytest.approx(FRAMES / demo_cameras.FPS)  # laid end to end
    assert cameras[1].wall_time(1) is None


def test_a_camera_folder_with_missing_frames_is_named(mtmc_cameras, tmp_path):
    folder = _copy_camera(mtmc_cameras, tmp_path)
    os.remove(folder / "img1" / "000007.jpg")
    with pytest.raises(ValueError, match=r"c1/img1: 1 of the 150 frames of seqLength are missing \(000007\.jpg\)"):
        sources.open_cameras(str(tmp_path))


def test_a_video_that_cannot_be_decoded_is_named(tmp_path):
    (tmp_path / "door.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    with pytest.raises(ValueError, match=r"door\.mp4: (OpenCV cannot open this video|no frame could be decoded)"):
        sources.open_cameras(str(tmp_path))
    (tmp_path / "door.mp4").unlink()
    with pytest.raises(ValueError, match="holds no camera: expected sub-folders with seqinfo.ini"):
        sources.open_cameras(str(tmp_path))

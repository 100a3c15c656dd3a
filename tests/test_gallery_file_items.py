"""`sal_tf.gallery.file_items.file_item`: the default metadata of an image file (sal-search add, sal-serve --index_images)."""

import os

from sal_tf.gallery.file_items import file_item


def test_a_market_name_gives_camera_and_identity_and_the_file_its_time(tmp_path):
    path = tmp_path / "0002_c3s1_000123_01.jpg"
    path.write_bytes(b"x")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    item = file_item(str(path))
    assert (item.id, item.path) == (str(path), str(path))
    assert (item.camera, item.person_id, item.timestamp) == (3, 2, 1_700_000_000.0)
    known = file_item(str(path), camid=2, pid=9)  # the name's camera as its 0-based camid, a CSV's identity
    assert (known.camera, known.person_id) == (3, 9)


def test_known_ids_win_and_an_unknown_name_gives_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    item = file_item("crop.png", camid=7, pid=41)  # a CSV's numbering, a file that is not there
    assert (item.camera, item.person_id, item.timestamp) == (7, 41, None)
    assert item.id == str(tmp_path / "crop.png")
    assert (file_item("crop.png").camera, file_item("crop.png").person_id) == (None, None)

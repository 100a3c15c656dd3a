"""Dataset parsers (Market-1501, DukeMTMC-reID, custom CSV) on tiny trees built in tmp_path."""

import os

import pytest

from sal_tf.data import Record, load_dataset
from sal_tf.data.custom import load_custom
from sal_tf.data.dukemtmc import load_dukemtmc
from sal_tf.data.market1501 import load_market1501

MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0010_c6s4_002202_01.jpg",
        "0007_c3s2_000101_02.jpg",
        "Thumbs.db",
    ],
    "query": ["0003_c1s1_001051_00.jpg", "0005_c4s2_000226.jpg", "-1_c2s1_000301_01.jpg"],
    "bounding_box_test": [
        "0003_c2s1_001101_02.jpg",
        "0000_c1s1_000011_01.jpg",
        "-1_c3s1_000401_03.jpg",
        "0005_c5s3_000100_04.jpg",
        "Thumbs.db",
        ".DS_Store",
    ],
}


def make_tree(root, layout):
    for folder, names in layout.items():
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for name in names:
            with open(os.path.join(root, folder, name), "wb") as f:
                f.write(b"\xff\xd8 not decoded by the parsers")
    return str(root)


def names(records):
    return [os.path.basename(r.path) for r in records]


def test_market_records_relabel_junk_distractors_and_skipped_files(tmp_path, capsys):
    root = make_tree(tmp_path, MARKET)
    ds = load_market1501(root, verbose=True)

    # Train: sorted by file name; pids 2, 7, 10 → 0, 1, 2; c1 → camera 0.
    assert [(os.path.basename(r.path), r.pid, r.camid) for r in ds.train] == [
        ("0002_c1s1_000451_03.jpg", 0, 0),
        ("0002_c2s1_000551_01.jpg", 0, 1),
        ("0007_c3s2_000101_02.jpg", 1, 2),
        ("0010_c6s4_002202_01.jpg", 2, 5),
    ]
    assert ds.train_original_pids == [2, 7, 10]
    assert ds.num_train_pids == 3 and ds.num_cameras == 6
    # Query/gallery keep original ids; the non-standard "0005_c4s2_000226.jpg" is read tolerantly.
    assert sorted((r.pid, r.camid) for r in ds.query) == [(-1, 1), (3, 0), (5, 3)]
    assert sorted((r.pid, r.camid) for r in ds.gallery) == [(-1, 2), (0, 0), (3, 1), (5, 4)]
    assert all(os.path.isabs(r.path) and os.path.exists(r.path) for r in ds.train + ds.query + ds.gallery)
    assert ds.skipped_files["non_image"] == 2 and ds.skipped_files["hidden"] == 1
    out = capsys.readouterr().out
    assert "market1501" in out and "train" in out and "gallery" in out
    # summary rows: ids (junk excluded), images, cameras.
    rows = {
        line.split("|")[0].strip(): [int(v) for v in line.split("|")[1:]]
        for line in ds.summary().splitlines()
        if line.count("|") == 3 and "subset" not in line
    }
    assert rows == {"train": [3, 4, 4], "query": [2, 3, 3], "gallery": [3, 4, 4]}


def test_market_parent_folder_and_quiet(tmp_path, capsys):
    make_tree(tmp_path / "Market-1501-v15.09.15", MARKET)
    ds = load_market1501(str(tmp_path), verbose=False)
    assert ds.root == str(tmp_path / "Market-1501-v15.09.15")
    assert len(ds.train) == 4 and capsys.readouterr().out == ""


def test_market_junk_and_distractors_never_train(tmp_path):
    layout = dict(
        MARKET, bounding_box_train=MARKET["bounding_box_train"] + ["0000_c1s1_000001_01.jpg", "-1_c1s1_000002_01.jpg"]
    )
    ds = load_market1501(make_tree(tmp_path, layout), verbose=False)
    assert ds.num_train_pids == 3 and len(ds.train) == 4
    assert ds.skipped_files["train_junk_or_distractor"] == 2


def test_market_missing_folder_names_it_and_the_layout(tmp_path):
    layout = {k: v for k, v in MARKET.items() if k != "query"}
    with pytest.raises(FileNotFoundError, match=r"query.*bounding_box_train/, query/, bounding_box_test/"):
        load_market1501(make_tree(tmp_path, layout), verbose=False)
    with pytest.raises(FileNotFoundError, match="Market-1501-v15.09.15"):
        load_market1501(str(tmp_path / "nowhere"), verbose=False)


@pytest.mark.parametrize(
    "bad",
    [
        "abc.jpg",
        "0002c1s1_000451_03.jpg",
        "0002_c12s1_000451_03.jpg",
        "0002_c0s1_000451_03.jpg",
        "-2_c1s1_000451_03.jpg",
        "0002_c7s1_000451_03.jpg",
    ],
)
def test_market_unparseable_name_is_an_error_naming_the_file(tmp_path, bad):
    layout = dict(MARKET, bounding_box_test=MARKET["bounding_box_test"] + [bad])
    with pytest.raises(ValueError) as info:
        load_market1501(make_tree(tmp_path, layout), verbose=False)
    assert bad in str(info.value) and "0002_c1s1_000451_03.jpg" in str(info.value)


def test_market_empty_split_and_only_junk_train(tmp_path):
    layout = dict(MARKET, query=["Thumbs.db"])
    with pytest.raises(ValueError, match=r"query.*holds no images"):
        load_market1501(make_tree(tmp_path / "a", layout), verbose=False)
    layout = dict(MARKET, bounding_box_train=["0000_c1s1_000001_01.jpg", "-1_c1s1_000002_01.jpg"])
    with pytest.raises(ValueError, match="only junk/distractor"):
        load_market1501(make_tree(tmp_path / "b", layout), verbose=False)


DUKE = {
    "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0005_c8_f0000001.jpg"],
    "query": ["0008_c1_f0040000.jpg", "0011_c7_f0000002.jpg"],
    "bounding_box_test": ["0008_c3_f0041111.jpg", "0011_c2_f0000900.jpg", "0099_c6_f0000010.jpg"],
}


def test_duke_parent_folder_cameras_and_relabel(tmp_path):
    make_tree(tmp_path / "DukeMTMC-reID", DUKE)
    ds = load_dukemtmc(str(tmp_path), verbose=False)
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 1), (0, 4), (1, 7)]
    assert ds.train_original_pids == [1, 5]
    assert [(r.pid, r.camid) for r in ds.query] == [(8, 0), (11, 6)]
    assert ds.num_cameras == 8 and ds.name == "dukemtmc"


def test_duke_bad_name_and_missing_folder(tmp_path):
    layout = dict(DUKE, query=DUKE["query"] + ["frame_0001.jpg"])
    with pytest.raises(ValueError, match=r"frame_0001\.jpg.*0001_c2_f0046182\.jpg"):
        load_dukemtmc(make_tree(tmp_path / "a", layout), verbose=False)
    with pytest.raises(ValueError, match=r"c9"):
        load_dukemtmc(make_tree(tmp_path / "b", dict(DUKE, query=["0001_c9_f0000001.jpg"])), verbose=False)
    with pytest.raises(FileNotFoundError, match="bounding_box_test"):
        load_dukemtmc(
            make_tree(tmp_path / "c", {k: v for k, v in DUKE.items() if k != "bounding_box_test"}), verbose=False
        )


def write_custom(root, splits, header="path,person_id,camera_id"):
    os.makedirs(root / "imgs", exist_ok=True)
    for split, rows in splits.items():
        lines = [header] + [",".join(str(v) for v in row) for row in rows]
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
        for row in rows:
            path = root / str(row[0])
            if not os.path.isabs(str(row[0])):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"x")
    return str(root)


CUSTOM = {
    "train": [
        ("imgs/a.jpg", 40, 0),
        ("imgs/b.jpg", 7, 1),
        ("imgs/c.jpg", 40, 2),
        ("imgs/j.jpg", -1, 0),
        ("imgs/z.jpg", 0, 1),
    ],
    "query": [("imgs/q1.jpg", 3, 0), ("imgs/q2.jpg", -1, 1)],
    "gallery": [("imgs/g1.jpg", 3, 1), ("imgs/g2.jpg", 9, 4)],
}


def test_custom_csv_relabels_keeps_id_zero_and_skips_junk(tmp_path, capsys):
    ds = load_dataset("custom", write_custom(tmp_path, CUSTOM), check_images=False)  # placeholder files
    assert [(os.path.basename(r.path), r.pid, r.camid) for r in ds.train] == [
        ("a.jpg", 2, 0),
        ("b.jpg", 1, 1),
        ("c.jpg", 2, 2),
        ("z.jpg", 0, 1),
    ]
    assert ds.train_original_pids == [0, 7, 40] and ds.skipped_files["train_junk"] == 1
    assert [r.pid for r in ds.query] == [3, -1] and ds.num_cameras == 5
    assert ds.gallery[0] == Record(str(tmp_path / "imgs" / "g1.jpg"), 3, 1)
    assert "custom" in capsys.readouterr().out


def test_custom_csv_extra_columns_whitespace_blank_lines_and_absolute_paths(tmp_path):
    absolute = tmp_path / "elsewhere.jpg"
    absolute.write_bytes(b"x")
    root = write_custom(tmp_path, dict(CUSTOM, gallery=[(str(absolute), 5, 0)]))
    (tmp_path / "query.csv").write_text("camera_id, person_id ,path,note\n 2, 3 ,imgs/q1.jpg,hello\n\n")
    ds = load_custom(root, verbose=False)
    assert ds.query == [Record(str(tmp_path / "imgs" / "q1.jpg"), 3, 2)]
    assert ds.gallery == [Record(str(absolute), 5, 0)]


# A bad gallery.csv → (exception, what its message must say).
BAD_GALLERY_CSVS = (
    ("path,person_id\nimgs/g1.jpg,3\n", ValueError, r"gallery\.csv.*camera_id.*path,person_id,camera_id"),
    ("path,person_id,camera_id\nimgs/missing.jpg,3,0\n", FileNotFoundError, r"gallery\.csv' line 2.*imgs/missing\.jpg"),
    ("path,person_id,camera_id\nimgs/g1.jpg,three,0\n", ValueError, r"gallery\.csv' line 2.*integers"),
    ("path,person_id,camera_id\nimgs/g1.jpg,-5,0\n", ValueError, r"person_id >= -1"),
    ("path,person_id,camera_id\n", ValueError, r"gallery\.csv' lists no images"),
)


def test_custom_csv_errors_name_the_file(tmp_path):
    root = write_custom(tmp_path, CUSTOM)
    for text, error, match in BAD_GALLERY_CSVS:
        (tmp_path / "gallery.csv").write_text(text)
        with pytest.raises(error, match=match):
            load_custom(root, verbose=False)
    os.remove(tmp_path / "gallery.csv")
    with pytest.raises(FileNotFoundError, match=r"gallery\.csv.*train\.csv, query\.csv and gallery\.csv"):
        load_custom(root, verbose=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_custom(str(tmp_path / "nowhere"), verbose=False)


def test_load_dataset_dispatch_and_unknown_name(tmp_path):
    ds = load_dataset("market1501", make_tree(tmp_path, MARKET), verbose=False, check_images=False)
    assert ds.name == "market1501"
    with pytest.raises(ValueError, match=r"'cuhk03'.*market1501.dukemtmc.custom.demo"):
        load_dataset("cuhk03", str(tmp_path))

"""`sal-search` with gallery stores, run as a user runs it (a subprocess per command).

Embeddings `.npz` files stand in for embedded images (the embed command's format: Market file
names, 0-based camids), so no model is loaded and the store commands start without TensorFlow.
"""

import json
import os
import sys

import numpy as np
import pytest

from sal_tf.inference import embedding_files
from tests.conftest import run_cmd

DIM = 16
NOON = 1777636800.0  # 2026-05-01T12:00:00Z


def _cli(*args, cwd):
    return run_cmd([sys.executable, "-m", "sal_tf.cli.search", *args], timeout=120, cwd=cwd)


def _ok(out):
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A Market-named gallery (6 people × cameras 1..3) and one query per person from camera 1.

    Each query is nearest to its person's camera-1 image, so leaving out the query's own camera
    moves that person's camera-2/3 images to the top.
    """
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    people = _unit(rng.standard_normal((6, DIM)))
    paths, pids, camids, vectors = [], [], [], []
    for p in range(6):
        for cam in (1, 2, 3):
            paths.append(f"gallery/{p + 1:04d}_c{cam}s1_000{cam}01_01.jpg")
            pids.append(p + 1)
            camids.append(cam - 1)  # as the embed command stores them (evaluation: 0-based)
            vectors.append(people[p] + (0.05 if cam == 1 else 0.3) * rng.standard_normal(DIM))
    gallery = embedding_files.Embeddings(_unit(np.array(vectors)), paths, np.array(pids), np.array(camids))
    embedding_files.save_npz(str(folder / "g.npz"), gallery)
    queries = _unit(np.array([vectors[3 * p] + 0.01 * rng.standard_normal(DIM) for p in range(6)]))
    qpaths = [f"query/{p + 1:04d}_c1s2_000999_01.jpg" for p in range(6)]
    embedding_files.save_npz(
        str(folder / "q.npz"), embedding_files.Embeddings(queries, qpaths, np.arange(1, 7), np.zeros(6, np.int64))
    )
    embedding_files.save_npz(str(folder / "unnamed.npz"), embedding_files.Embeddings(queries[:1], ["holiday.jpg"]))
    embedding_files.save_npz(str(folder / "narrow.npz"), embedding_files.Embeddings(queries[:1, :8], ["x.jpg"]))
    return folder


@pytest.fixture(scope="module")
def with_store(files):
    """Store "s" of the gallery in the module's folder, for the error cases."""
    _ok(_cli("add", "--store=s", "--embeddings=g.npz", cwd=files))


def test_add_stats_query_delete_on_a_folder_and_a_milvus_lite_file(files):
    cwd = files
    added = _ok(_cli("add", "--store=gs", "--embeddings=g.npz", "--timestamp=2026-05-01T12:00:00", cwd=cwd))
    assert "Added 18 item(s)" in added and "holds 18" in added and "Cameras known for 18/18" in added
    stats = json.loads(_ok(_cli("stats", "--store=gs", cwd=cwd)))
    assert (stats["kind"], stats["count"], stats["dim"], stats["distance"]) == ("folder", 18, DIM, "euclidean")

    plain = [
        json.loads(s)
        for s in _ok(_cli("query", "--store=gs", "--queries=q.npz", "--k=3", "--format=jsonl", cwd=cwd)).splitlines()
    ]
    assert [e["results"][0]["camera"] for e in plain] == [1] * 6  # c1 files are camera 1, as named
    assert all(e["query_camera"] == 1 and e["results"][0]["match"] for e in plain)
    first = plain[0]["results"][0]
    assert set(first) == {"rank", "id", "distance", "camera", "timestamp", "path", "person_id", "match"}  # Hit.to_json
    assert first["id"] == os.path.join(str(cwd), "gallery/0001_c1s1_000101_01.jpg") and first["timestamp"] == NOON

    own = _cli("query", "--store=gs", "--queries=q.npz", "--k=3", "--format=jsonl", "--exclude_own_camera", cwd=cwd)
    own = [json.loads(s) for s in _ok(own).splitlines()]
    for entry in own:
        assert all(h["camera"] != 1 for h in entry["results"]) and entry["results"][0]["match"]
        assert entry["results"][0]["person_id"] == entry["query_person_id"]

    table = _ok(_cli("query", "--store=gs", "--queries=q.npz", "--k=2", "--cameras=c3", "--time_range=0,2e9", cwd=cwd))
    assert (
        "(pid 1, c1)" in table
        and "    c3  yes    2026-05-01 12:00:00  " in table
        and " c1 " not in table.split("\n", 2)[2]
    )
    outside = _ok(_cli("query", "--store=gs", "--queries=q.npz", "--time_range=2027-01-01,2027-02-01", cwd=cwd))
    assert outside.count("(no gallery item passes the filters)") == 6

    # the same gallery in Milvus Lite answers the same
    _ok(_cli("add", "--store=gs.db", "--embeddings=g.npz", "--timestamp=2026-05-01T12:00:00", cwd=cwd))
    milvus = _cli(
        "query", "--store=gs.db", "--queries=q.npz", "--k=3", "--format=jsonl", "--exclude_own_camera", cwd=cwd
    )
    milvus = [json.loads(s) for s in _ok(milvus).splitlines()]
    assert [[h["id"] for h in e["results"]] for e in milvus] == [[h["id"] for h in e["results"]] for e in own]
    assert json.loads(_ok(_cli("stats", "--store=gs.db", cwd=cwd)))["kind"] == "milvus"

    # an index folder built by `index` filters the same way
    _ok(_cli("index", "--embeddings=g.npz", "--index_dir=idx", cwd=cwd))
    indexed = _cli(
        "query", "--index_dir=idx", "--queries=q.npz", "--k=3", "--format=jsonl", "--exclude_own_camera", cwd=cwd
    )
    indexed = [json.loads(s) for s in _ok(indexed).splitlines()]
    assert [[os.path.join(str(cwd), h["path"]) for h in e["results"]] for e in indexed] == [
        [h["id"] for h in e["results"]] for e in own
    ]

    gone = first["id"]
    assert "Deleted 1 item(s)" in _ok(_cli("delete", "--store=gs", gone, cwd=cwd))
    out = _cli("delete", "--store=gs", gone, cwd=cwd)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [f"error: no item with id {gone!r}"]
    again = json.loads(
        _ok(_cli("query", "--store=gs", "--queries=q.npz", "--k=1", "--format=jsonl", cwd=cwd)).splitlines()[0]
    )
    assert again["results"][0]["id"] != gone


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "--embeddings=g.npz"], "error: add: --store is required (a folder, a *.db file or a Milvus URI)."),
        (
            ["stats", "--store=missing"],
            "error: --store 'missing' holds no gallery store; create one with `add` (see --help).",
        ),
        (["query", "--store=s", "--index_dir=i", "--queries=q.npz"], "error: query: give exactly one of --store"),
        (["add", "--store=s", "--embeddings=narrow.npz"], "error: Gallery store"),
        (["query", "--store=s", "--queries=q.npz", "--time_range=5,1"], "error: --time_range: the start '5' is after"),
        (
            ["query", "--store=s", "--queries=q.npz", "--time_range=yesterday,now"],
            "error: --time_range: 'yesterday' is neither",
        ),
        (["query", "--store=s", "--queries=q.npz", "--cameras=left"], "error: --cameras must list camera numbers"),
        (["query", "--store=s", "--queries=q.npz", "--k=0"], "error: --k must be in [1, 16384]. Received: 0"),
        (
            ["query", "--store=s", "--queries=unnamed.npz", "--exclude_own_camera"],
            "error: --exclude_own_camera needs each query's camera",
        ),
        (["query", "--store=s", "--queries=narrow.npz"], "error: `queries` must be a [count, 16] matrix"),
        (["delete", "--store=s"], "error: delete: give the ids to delete"),
        (["stats", "--store=s", "extra"], "error: stats: unexpected arguments ['extra']"),
        (["frobnicate"], "error: Give one command, one of index, query, add, delete, stats, repair"),
        (["repair", "--store=gs.db"], "error: repair works on a folder store"),
    ],
)
def test_mistakes_are_one_error_line_and_exit_2(files, with_store, args, message):
    out = _cli(*args, cwd=files)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), out.stderr[-2000:]


def test_a_damaged_store_is_refused_until_repair_keeps_every_intact_record(files, tmp_path):
    """A corrupt length in record 2 of 4: every command refuses the store, naming the byte and `repair`;
    `repair` keeps the intact records and says what it dropped; the store then opens."""
    from sal_tf.gallery import Item, append_log, open_store

    folder = str(tmp_path / "damaged")
    rng = np.random.default_rng(1)
    with open_store(folder, dim=DIM) as store:
        for r in range(4):
            store.add(_unit(rng.standard_normal((3, DIM))), [Item(id=f"{r}-{i}") for i in range(3)])
    (log,) = [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("log-")]
    data = bytearray(open(log, "rb").read())
    second = data.find(append_log.RECORD_MAGIC, append_log.MAGIC_SIZE + 1)
    third = data.find(append_log.RECORD_MAGIC, second + 1)
    data[second + 4 : second + 8] = (0x7FFFFFFF).to_bytes(4, "little")
    data[third + 30] ^= 0xFF  # and a damaged payload in record 3
    open(log, "wb").write(bytes(data))
    out = _cli("stats", f"--store={folder}", cwd=files)
    (line,) = out.stderr.strip().splitlines()
    assert (
        out.returncode == 2 and f"is damaged at byte {second}" in line and f"sal-search repair --store={folder}" in line
    )
    assert open(log, "rb").read() == bytes(data)
    repaired = _ok(_cli("repair", f"--store={folder}", cwd=files))
    assert "kept 3 intact record(s) (1 with a damaged header" in repaired and "dropped 1 damaged span(s)" in repaired
    stats = json.loads(_ok(_cli("stats", f"--store={folder}", cwd=files)))
    assert stats["count"] == 9
    assert "is intact (3 record(s)); nothing changed" in _ok(_cli("repair", f"--store={folder}", cwd=files))


def test_add_flags_change_the_file_defaults(files):
    """--ids=name, --camera and --timestamp=none change what `file_item` gives each gallery file."""
    _ok(_cli("add", "--store=named", "--embeddings=g.npz", "--ids=name", "--camera=7", "--timestamp=none", cwd=files))
    out = _ok(_cli("query", "--store=named", "--queries=q.npz", "--k=1", "--format=jsonl", cwd=files))
    hit = json.loads(out.splitlines()[0])["results"][0]
    assert hit["id"] == "0001_c1s1_000101_01.jpg" and hit["camera"] == 7 and hit["timestamp"] is None
    assert hit["path"] == os.path.join(str(files), "gallery/0001_c1s1_000101_01.jpg") and hit["person_id"] == 1

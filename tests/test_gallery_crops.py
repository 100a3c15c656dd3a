"""`sal_tf.gallery.crops.CropFolder`: crops in one SQLite database, a batch one durable transaction, the old layout migrated."""

import hashlib
import json
import os
import threading

import pytest

from sal_tf.gallery import crops as crops_module
from sal_tf.gallery.base import StoreCorruptedError
from sal_tf.gallery.crops import CropFolder

OLD_CROPS = {  # id: (content type, bytes), as session 4's service wrote them
    "../../etc/passwd": ("image/jpeg", b"\xff\xd8jpeg bytes\n\x00with a newline"),
    "50% off ü #?&": ("image/png", b"\x89PNG" + bytes(range(256))),
    "plain": (None, b""),
}


def write_old_layout(root, crops):
    """The data folder as the session-4 service left it: `crops/<sha256 of the id>` files (a JSON header
    line, then the bytes), a staged `*.tmp-*` file and a pending record (sal_tf/gallery/crops.py)."""
    os.makedirs(os.path.join(root, "crops"))
    os.makedirs(os.path.join(root, "pending"))
    for item_id, (kind, data) in crops.items():
        name = hashlib.sha256(item_id.encode("utf-8")).hexdigest()
        with open(os.path.join(root, "crops", name), "wb") as f:
            f.write(json.dumps({"id": item_id, "content_type": kind}).encode("utf-8") + b"\n" + data)
    with open(os.path.join(root, "crops", "0" * 64 + ".tmp-1-abcd"), "wb") as f:
        f.write(b'{"id": "staged", "content_type": "image/png"}\nnever committed')
    with open(os.path.join(root, "pending", "0123.json"), "w") as f:
        json.dump({"action": "delete", "ids": ["plain"]}, f)


def test_a_batch_is_one_durable_transaction(tmp_path):
    folder = CropFolder(tmp_path / "data")
    assert folder._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert folder._writer.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL: the WAL fsynced at each commit
    folder.write(["a", "b"], [b"1", b"2"], ["image/png", "image/jpeg"])
    with pytest.raises(Exception, match="NOT NULL"):
        folder.write(["c", None], [b"3", b"4"], ["image/png"] * 2)  # fails on its second row
    assert folder.read("c") is None  # all of a batch or none of it
    folder.write(["a"], [b"new"], ["image/gif"])  # an id added again: its crop replaced
    assert (folder.read("a"), folder.read("b")) == ((b"new", "image/gif"), (b"2", "image/jpeg"))
    assert sorted(os.listdir(folder.root)) == ["crops.sqlite", "crops.sqlite-shm", "crops.sqlite-wal"]
    folder.close()
    reopened = CropFolder(tmp_path / "data")
    assert sorted(reopened.ids()) == ["a", "b"] and reopened.read("b") == (b"2", "image/jpeg")
    reopened.close()


def test_a_full_disk_is_reported_as_such_and_the_next_batch_is_written(tmp_path):
    folder = CropFolder(tmp_path / "data")
    folder.write(["a"], [b"1"], ["image/png"])
    pages = folder._writer.execute("PRAGMA page_count").fetchone()[0]
    folder._writer.execute(f"PRAGMA max_page_count={pages + 1}")  # the database full, as on a full disk
    with pytest.raises(Exception, match="database or disk is full"):  # SQLite rolled it back itself
        folder.write(["big"], [b"x" * 100_000], ["image/png"])
    folder._writer.execute("PRAGMA max_page_count=1000000")
    folder.write(["b"], [b"2"], ["image/png"])
    assert sorted(folder.ids()) == ["a", "b"]
    folder.close()


def test_clean_and_remove_unheld_drop_only_crops_the_store_does_not_hold(tmp_path):
    folder = CropFolder(tmp_path / "data")
    folder.write(["kept", "orphan", "gone"], [b"1", b"2", b"3"], ["image/png"] * 3)
    assert folder.remove_unheld(["kept", "gone", "never"], lambda i: i != "gone") == 1
    assert folder.clean(["kept", "not stored"]) == 1
    assert folder.ids() == ["kept"] and folder.read("kept") == (b"1", "image/png")
    folder.close()


def test_a_reader_thread_sees_every_batch_once_its_write_returned(tmp_path):
    folder = CropFolder(tmp_path / "data")
    written, failures, done = [], [], threading.Event()

    def read_while_writing():
        while not done.is_set() or written:
            if written:
                item_id = written.pop(0)
                if folder.read(item_id) != (item_id.encode(), "image/png"):
                    failures.append(item_id)

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    for n in range(200):
        ids = [f"{n}-{i}" for i in range(4)]
        folder.write(ids, [i.encode() for i in ids], ["image/png"] * 4)
        written.extend(ids)
    done.set()
    reader.join()
    assert failures == []
    folder.close()


def test_reads_from_threads_that_come_and_go_reuse_their_connections(tmp_path):
    folder = CropFolder(tmp_path / "data")
    folder.write(["a"], [b"1"], ["image/png"])
    found = []
    reader = threading.Thread(target=lambda: found.append(folder.read("a")))
    reader.start()
    reader.join()
    open_files = len(os.listdir("/proc/self/fd"))
    for _ in range(20):  # a server's worker threads: each reads, then ends
        reader = threading.Thread(target=lambda: found.append(folder.read("a")))
        reader.start()
        reader.join()
    assert found == [(b"1", "image/png")] * 21 and len(os.listdir("/proc/self/fd")) == open_files
    folder.close()


def test_the_old_layout_is_migrated_and_every_crop_read_back(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_old_layout(root, OLD_CROPS)
    open(root / "crops" / "not-a-crop", "wb").write(b"no header")  # left where it is, with a warning
    monkeypatch.setattr(crops_module, "MIGRATION_CHUNK", 2)
    folder = CropFolder(root)
    for item_id, (kind, data) in OLD_CROPS.items():
        assert folder.read(item_id) == (data, kind or "application/octet-stream"), item_id
    assert sorted(folder.ids()) == sorted(OLD_CROPS)
    assert os.listdir(root / "crops") == ["not-a-crop"] and not (root / "pending").exists()
    folder.close()
    again = CropFolder(root)  # idempotent
    assert sorted(again.ids()) == sorted(OLD_CROPS) and again.read("plain") == (b"", "application/octet-stream")
    again.close()


def test_a_migration_cut_by_a_crash_runs_again_to_the_same_end(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_old_layout(root, OLD_CROPS)
    monkeypatch.setattr(crops_module, "MIGRATION_CHUNK", 2)
    removals, remove = [], os.remove

    def crash_on_second_removal(path):
        removals.append(path)
        remove(path)
        if len(removals) == 2:
            raise KeyboardInterrupt  # the process dies here, one crop file removed: its row must be committed

    monkeypatch.setattr(os, "remove", crash_on_second_removal)
    with pytest.raises(KeyboardInterrupt):
        CropFolder(root)
    monkeypatch.setattr(os, "remove", remove)
    assert len(os.listdir(root / "crops")) == len(OLD_CROPS) - 1  # the staged file and one crop's file gone
    folder = CropFolder(root)
    for item_id, (kind, data) in OLD_CROPS.items():
        assert folder.read(item_id) == (data, kind or "application/octet-stream"), item_id
    assert not (root / "crops").exists() and not (root / "pending").exists()
    folder.close()


def test_a_row_already_in_the_database_wins_over_an_old_file_of_the_same_id(tmp_path):
    root = tmp_path / "data"
    folder = CropFolder(root)
    folder.write(["plain"], [b"newer"], ["image/png"])
    folder.close()
    write_old_layout(root, OLD_CROPS)  # as a migration cut after its commit, before its removals, leaves it
    folder = CropFolder(root)
    assert folder.read("plain") == (b"newer", "image/png") and len(folder.ids()) == len(OLD_CROPS)
    folder.close()


def test_a_damaged_database_is_refused_naming_the_file(tmp_path):
    root = tmp_path / "data"
    os.makedirs(root)
    damaged = b"not an SQLite database at all" * 200
    open(root / "crops.sqlite", "wb").write(damaged)
    with pytest.raises(StoreCorruptedError, match="Crop database .*crops.sqlite.* damaged or not an SQLite") as e:
        CropFolder(root)
    assert "move the file aside" in str(e.value) and e.value.exit_status == 2
    assert open(root / "crops.sqlite", "rb").read() == damaged  # left as it was

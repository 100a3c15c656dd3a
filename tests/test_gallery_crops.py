"""`sal_tf.gallery.crops.CropFolder`: a batch of crops durable with one folder fsync, and no partial file left."""

import os

import pytest

from sal_tf.gallery.crops import CropFolder


def test_a_batch_fsyncs_each_crop_before_its_rename_then_the_folder_once(tmp_path, monkeypatch):
    folder = CropFolder(tmp_path / "crops")
    events, fsync, replace = [], os.fsync, os.replace

    def recording_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(src, dst):
        events.append(("rename", os.fspath(src)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    ids = [f"item-{i}" for i in range(6)]
    record = folder.begin(ids, "add")
    assert events == [("rename", record + f".tmp-{os.getpid()}")]  # the record: renamed into place, no fsync
    events.clear()
    folder.write(ids, [bytes([i]) * 100 for i in range(6)], ["image/jpeg"] * 6)
    renames = [i for i, (kind, _) in enumerate(events) if kind == "rename"]
    assert len(renames) == 6 and events[-1] == ("fsync", folder.crops)  # the folder last, once
    assert [e for e in events if e[1] == folder.crops] == [("fsync", folder.crops)]
    for i in renames:  # each file's data fsynced before its rename
        assert ("fsync", events[i][1]) in events[:i]
    folder.end(record)
    monkeypatch.undo()
    assert [folder.read(i)[0] for i in ids] == [bytes([i]) * 100 for i in range(6)]
    folder.close()


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    folder = CropFolder(tmp_path / "crops")
    os.makedirs(folder.path_of("blocked"))  # its rename fails
    with pytest.raises(OSError):
        folder.write(["a", "blocked", "b"], [b"1", b"2", b"3"], ["image/png"] * 3)
    assert not [n for n in os.listdir(folder.crops) if ".tmp-" in n]
    assert folder.read("a") == (b"1", "image/png")  # renamed before the failure (the service settles it)
    folder.close()


def test_an_unreadable_pending_record_is_dropped_and_clean_removes_its_crops(tmp_path):
    folder = CropFolder(tmp_path / "crops")
    folder.write(["kept", "orphan"], [b"1", b"2"], ["image/png"] * 2)
    record = folder.begin(["orphan"], "add")
    open(record, "w").close()  # what a crash of the machine may leave of a record never fsynced
    assert folder.recover(lambda i: i == "kept") == 0 and os.listdir(folder.pending) == []
    assert folder.clean(["kept"]) == 1 and folder.read("orphan") is None and folder.read("kept") == (b"1", "image/png")
    folder.close()


def test_staged_crops_are_no_crops_until_committed(tmp_path):
    folder = CropFolder(tmp_path / "crops")
    staged = folder.stage(["a"], [b"1"], ["image/png"])
    record = folder.begin(["a"], "delete")  # a delete of the same id meanwhile: its settle sees no crop of "a"
    assert folder.settle(record, lambda i: False) == 0 and folder.read("a") is None
    folder.commit(staged)
    folder.discard(staged)
    assert folder.read("a") == (b"1", "image/png") and os.listdir(folder.crops) == [
        os.path.basename(folder.path_of("a"))
    ]
    folder.discard(folder.stage(["b"], [b"2"], ["image/png"]))  # refused before its commit: nothing left
    assert len(os.listdir(folder.crops)) == 1 and folder.read("b") is None
    folder.close()


def test_a_crash_between_stage_and_commit_leaves_nothing_visible_after_reopen(tmp_path):
    folder = CropFolder(tmp_path / "crops")
    folder.write(["held"], [b"old"], ["image/png"])  # an item the store holds, re-added when the crash came
    folder.stage(["held", "new"], [b"newer", b"2"], ["image/jpeg"] * 2)  # then the process dies: no commit
    folder.close()
    reopened = CropFolder(tmp_path / "crops")
    assert reopened.recover(lambda i: i == "held") == 0
    assert reopened.read("held") == (b"old", "image/png") and reopened.read("new") is None  # the store's own crop
    assert os.listdir(reopened.crops) == [os.path.basename(reopened.path_of("held"))]  # no staged file left
    reopened.close()

"""`CropFolder`: a gallery's image crops on disk, a journal kept beside the store, durable before the store hears of them.

Layout of the service's data folder:

* `crops/<sha256 of the id>`: one file per item: a JSON header line `{"id", "content_type"}`, then
  the image bytes as uploaded. Named by a hash, never by the id, so an id such as
  `../../etc/passwd` is only ever a key: no file outside this folder is named after it.
* `pending/<uuid>.json`: the id of a delete in flight (written first, removed once the store has
  answered; not fsynced, see below).

Order of an add (`sal_tf/serve/service.py`, the service that keeps crops): crops staged (`stage`:
each written to a temporary `*.tmp-*` file, then all fsynced at once, outside the service's write lock:
no reader, `settle` or `clean` sees them) → under the lock: crops renamed into place and the
folder fsynced once for the batch (`commit`) → `store.add` (durable when it returns); if the store
refuses, the batch's crops of ids it does not hold go (`remove_unheld`). A delete: pending record →
`store.delete` → crop removed → record removed. After a crash, `recover` removes the staged files
and walks the pending records (a crop whose id the store does not hold is garbage and goes), and
`clean`, run at every open, removes every crop whose id the store does not hold: an add
interrupted between its renames and the store's answer, items deleted by other means
(`sal-search delete`), or dropped by `sal-search repair`. So a store entry always has its crop, a
crop without a store entry does not survive a restart, and a pending record needs no fsync (nor an
add one at all: on a file system without a journal, such as this machine's ext4, each file created
and removed makes every file created in the next ~30 s scan past its freed inode, `recently_deleted`
in the kernel's profile). The crops themselves are fsynced before the store hears of them.
"""

import concurrent.futures
import hashlib
import json
import os
import threading
import uuid

from sal_tf.utils import fsync_folder

FSYNC_THREADS = 32  # the fsyncs of a batch's crop files at once (a slow disk's latency paid about once)


def crop_name(item_id):
    """The file name of an id's crop: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()


class CropFolder:
    """Image crops by gallery id, under `root/crops`, with the pending records under `root/pending`."""

    def __init__(self, root):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.crops = os.path.join(self.root, "crops")
        self.pending = os.path.join(self.root, "pending")
        for folder in (self.crops, self.pending):
            os.makedirs(folder, exist_ok=True)
        self._creating = threading.Lock()  # one batch creates its files at a time (see `stage`)
        self._pool = concurrent.futures.ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="crop-fsync")

    def close(self):
        self._pool.shutdown(wait=True)

    def path_of(self, item_id):
        return os.path.join(self.crops, crop_name(item_id))

    def begin(self, ids, action):
        """Records `action` ("add" / "delete") of `ids` (renamed into place, not fsynced: see the module
        docstring); returns the record's path for `end`."""
        path = os.path.join(self.pending, f"{uuid.uuid4().hex}.json")
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"action": action, "ids": list(ids)}, f)
        os.replace(tmp, path)
        return path

    def end(self, record):
        os.remove(record)

    def stage(self, ids, images, content_types):
        """Writes the crops of `ids` (bytes `images`) under temporary names, then fsyncs them all at once.

        Returns [(temporary path, crop path)] for `commit`, then `discard` in any case. A staged crop
        is not yet a crop: `read`, `settle` and `clean` do not see it, `recover` removes it after a
        crash; so staging runs outside a caller's write lock, only `commit` inside it. The files are
        created on the caller's thread, one batch at a time: creating a file takes the folder's lock,
        and concurrent creators spin on it (`rwsem_spin_on_owner`, ~10% of the server's CPU in a
        kernel profile of the ingest benchmark) rather than sleep. Their fsyncs run at once
        (FSYNC_THREADS), so a disk's fsync latency is paid about once a batch: with 4 ms added to
        each fsync, 4 clients stage 1,785 crops/s this way, 722 fsyncing in turn (a micro benchmark).
        """
        staged = [(f"{self.path_of(i)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}", self.path_of(i)) for i in ids]
        files, syncs = [], []
        try:
            with self._creating:
                for (tmp, _), item_id, data, kind in zip(staged, ids, images, content_types):
                    header = json.dumps({"id": item_id, "content_type": kind}).encode("utf-8", "surrogatepass")
                    files.append(open(tmp, "wb"))
                    files[-1].write(header + b"\n" + data)
                    files[-1].flush()
            syncs.extend(self._pool.submit(os.fsync, f.fileno()) for f in files)
            concurrent.futures.wait(syncs)
            for done in syncs:
                done.result()
        except BaseException:
            self.discard(staged)
            raise
        finally:
            concurrent.futures.wait(syncs)  # every fsync finished before a failure is raised or a file closed
            for f in files:
                f.close()
        return staged

    def commit(self, staged):
        """Renames `stage`d crops to their ids' names, then fsyncs the folder once: the batch durable and visible.

        Each renamed crop leaves `staged` (a failed rename leaves the rest there for `discard`).
        """
        while staged:
            os.replace(*staged[0])
            del staged[0]
        fsync_folder(self.crops)

    def discard(self, staged):
        """Removes the `stage`d files that were not committed."""
        for tmp, _ in staged:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass

    def write(self, ids, images, content_types):
        """Writes the crops of `ids` durably: `stage`, then `commit` (each file fsynced, the folder once)."""
        staged = self.stage(ids, images, content_types)
        try:
            self.commit(staged)
        finally:
            self.discard(staged)

    def read(self, item_id):
        """(bytes, content type) of an id's crop, or None."""
        try:
            with open(self.path_of(item_id), "rb") as f:
                header = json.loads(f.readline())
                data = f.read()
        except FileNotFoundError:
            return None
        if header.get("id") != item_id:  # a SHA-256 collision: never serve another item's crop
            return None
        return data, header.get("content_type") or "application/octet-stream"

    def remove(self, ids):
        for item_id in ids:
            try:
                os.remove(self.path_of(item_id))
            except FileNotFoundError:
                pass

    def settle(self, record, in_store):
        """Removes the crops of `record`'s ids that the store does not hold, then the record.

        `in_store(id) -> bool` tells whether the store holds an id. Returns the number removed.
        """
        try:
            with open(record) as f:
                ids = json.load(f)["ids"]
        except (ValueError, KeyError, TypeError):  # lost by a crash of the machine: `clean` covers its ids
            ids = []
        removed = self.remove_unheld(ids, in_store)
        os.remove(record)
        return removed

    def remove_unheld(self, ids, in_store):
        """Removes the crops of `ids` that the store does not hold (`in_store(id) -> bool`); returns how many."""
        garbage = [i for i in ids if os.path.exists(self.path_of(i)) and not in_store(i)]
        self.remove(garbage)
        return len(garbage)

    def clean(self, held_ids):
        """Removes every crop whose id is not in `held_ids` (all the store's ids); returns the number removed."""
        keep = {crop_name(i) for i in held_ids}
        garbage = [n for n in os.listdir(self.crops) if n not in keep and ".tmp-" not in n]
        for name in garbage:
            os.remove(os.path.join(self.crops, name))
        if garbage:
            fsync_folder(self.crops)
        return len(garbage)

    def recover(self, in_store):
        """Finishes what a crash interrupted (see the module docstring); returns the garbage crops removed."""
        for name in sorted(os.listdir(self.crops)):
            if ".tmp-" in name:  # a write that never reached its rename
                os.remove(os.path.join(self.crops, name))
        removed = 0
        for name in sorted(os.listdir(self.pending)):
            path = os.path.join(self.pending, name)
            if ".tmp-" in name:
                os.remove(path)
            else:
                removed += self.settle(path, in_store)
        fsync_folder(self.crops)
        return removed

"""`CropFolder`: a gallery's image crops in one SQLite database beside the store, durable before the store hears of them.

Layout of the service's data folder (`--data_dir`, default `<store>.crops`):

* `crops.sqlite` (and SQLite's `-wal` / `-shm` files beside it): one table, `crops(id TEXT PRIMARY
  KEY, content_type, data BLOB)`, the image bytes as uploaded. An id is only a key: no file is
  ever named after it, so an id such as `../../etc/passwd` names nothing on disk. WAL journal,
  `synchronous=FULL`: a transaction is on disk (the WAL fsynced) when its commit returns.

Why not one file per crop (the layout up to session 4, below): on a file system without a journal,
such as this machine's ext4, creating a file scans past every recently freed inode
(`recently_deleted` in the kernel's profile), 30 µs a file in a quiet folder and 190–430 µs where
many were removed; that was 30–47 % of the server's CPU during ingest. A batch of crops is now one
transaction: one WAL append and one fsync (BUILD.md "Deploying the appearance model").

Order of an add (`sal_tf/serve/service.py`, the service that keeps crops), all under the service's
write lock: the batch's crops in one transaction (`write`, durable when it returns) → `store.add`
(durable when it returns); if the store refuses, the batch's crops of ids it does not hold go
(`remove_unheld`). A delete: `store.delete` → its crop removed (`remove_unheld`). A crash between
the two steps of either leaves a crop whose id the store does not hold, and `clean`, run at every
open, removes every such crop (also items deleted by other means, `sal-search delete`, or dropped by
`sal-search repair`). So a store entry always has its crop, a crop without a store entry does not
survive a restart, a delete leaves no crop, and two adds of one id write their crops and add their
vectors in the same (lock) order: the crop kept is the one of the vector kept.

Reads (`read`, `ids`) take an idle connection from a pool (one per read running at once, kept for
the next; not one per thread, since a server's worker threads come and go): under WAL a reader
never waits for the writer, which writes through its own connection under a lock.

The previous layout, `crops/<sha256 of the id>` files (a JSON header line `{"id", "content_type"}`,
then the image bytes) and `pending/` records, is migrated at open (`migrate`): the crops are
inserted in chunks, each chunk's files removed only after its commit; a row already in the database
is kept (`INSERT OR IGNORE`: it is the same crop, or a newer one), so a migration cut by a crash runs
again to the same end. Staged `*.tmp-*` files and pending records are dropped (`clean` covers their
ids); a file that cannot be read as a crop is left where it is, with a warning.
"""

import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading

from sal_tf.gallery.base import StoreCorruptedError

DATABASE = "crops.sqlite"  # the database's file name in the data folder
MIGRATION_CHUNK = 512  # old-layout crop files inserted per transaction (then removed)
SCHEMA = "CREATE TABLE IF NOT EXISTS crops (id TEXT PRIMARY KEY NOT NULL, content_type TEXT, data BLOB NOT NULL)"

log = logging.getLogger(__name__)


class CropFolder:
    """Image crops by gallery id, in `root/crops.sqlite` (see the module docstring)."""

    def __init__(self, root):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.path = os.path.join(self.root, DATABASE)
        os.makedirs(self.root, exist_ok=True)
        self._writing = threading.Lock()  # one writer at a time, through `self._writer`
        self._idle = queue.SimpleQueue()  # read connections not in use
        self._readers, self._readers_lock = [], threading.Lock()  # every read connection, for `close`
        with self.reporting_damage():
            self._writer = self._connect()
            self._writer.execute("PRAGMA journal_mode=WAL")
            self._writer.execute(SCHEMA)
            self.migrate()

    def _connect(self):
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    @contextlib.contextmanager
    def reporting_damage(self):
        """Turns SQLite's failure to read the database into a `StoreCorruptedError` naming the file and the way out."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise StoreCorruptedError(
                f"Crop database {self.path!r} cannot be read ({e}): it is damaged or not an SQLite database. "
                "The file is left as it was. Restore the data folder from a backup, or move the file aside "
                "(with its -wal and -shm files) to start with no stored crops: the store's items then have "
                "no image (GET .../image answers 404) until added again."
            ) from None

    def close(self):
        with self._writing, self._readers_lock:
            for connection in [self._writer, *self._readers]:
                connection.close()
            self._readers.clear()

    @contextlib.contextmanager
    def _reading(self):
        """An idle read connection (a new one when every one is in use), given back to the pool after."""
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = self._connect()
            connection.execute("PRAGMA cache_size=-512")  # 512 KiB a reader: the OS caches the file too
            with self._readers_lock:
                self._readers.append(connection)
        try:
            yield connection
        finally:
            self._idle.put(connection)

    @contextlib.contextmanager
    def transaction(self):
        """The writer connection inside `BEGIN IMMEDIATE` … `COMMIT` (rolled back on any failure)."""
        with self._writing:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
                self._writer.execute("COMMIT")
            except BaseException:
                if self._writer.in_transaction:  # also after a failed COMMIT (a full disk): the next BEGIN works
                    self._writer.execute("ROLLBACK")
                raise

    def write(self, ids, images, content_types):
        """Stores the crops of `ids` (bytes `images`), replacing any of the same id: one transaction, durable on return."""
        rows = [(i, kind, data) for i, data, kind in zip(ids, images, content_types, strict=True)]
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO crops (id, content_type, data) VALUES (?, ?, ?)", rows)

    def read(self, item_id):
        """(bytes, content type) of an id's crop, or None."""
        with self._reading() as db:
            rows = db.execute("SELECT data, content_type FROM crops WHERE id = ?", (item_id,)).fetchall()
        if not rows:  # fetchall: the statement runs to its end and ends its read transaction
            return None
        return rows[0][0], rows[0][1] or "application/octet-stream"

    def ids(self):
        """Every id that has a crop."""
        with self.reporting_damage(), self._reading() as db:
            return [row[0] for row in db.execute("SELECT id FROM crops")]

    def remove(self, ids):
        """Removes the crops of `ids` (an id without one is skipped) in one transaction; returns how many."""
        if not ids:
            return 0
        with self.transaction() as db:
            return db.executemany("DELETE FROM crops WHERE id = ?", [(i,) for i in ids]).rowcount

    def remove_unheld(self, ids, in_store):
        """Removes the crops of `ids` that the store does not hold (`in_store(id) -> bool`); returns how many."""
        return self.remove([i for i in ids if not in_store(i)])

    def clean(self, held_ids):
        """Removes every crop whose id is not in `held_ids` (all the store's ids); returns the number removed."""
        keep = set(held_ids)
        return self.remove([i for i in self.ids() if i not in keep])

    def migrate(self):
        """Moves the crops of the old layout (`crops/`, `pending/`: the module docstring) into the database.

        Returns the number of crops moved.
        """
        old, pending = os.path.join(self.root, "crops"), os.path.join(self.root, "pending")
        moved = 0
        if os.path.isdir(old):
            names = sorted(os.listdir(old))
            for first in range(0, len(names), MIGRATION_CHUNK):
                moved += self._migrate_chunk(old, names[first : first + MIGRATION_CHUNK])
        if os.path.isdir(pending):
            for name in os.listdir(pending):
                os.remove(os.path.join(pending, name))
        for folder in (old, pending):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # kept (with a warning above) while it holds a file that is not a crop
        if moved:
            log.warning("Moved %d stored crop(s) from %s into %s.", moved, old, self.path)
        return moved

    def _migrate_chunk(self, folder, names):
        """Inserts the old-layout crop files `names` of `folder` in one transaction, then removes them."""
        rows, done = [], []
        for name in names:
            path = os.path.join(folder, name)
            crop = None if ".tmp-" in name else read_old_crop(path)
            if crop is not None:
                rows.append(crop)
            elif ".tmp-" not in name:
                log.warning("Left %s where it is: not a stored crop of the old layout.", path)
                continue
            done.append(path)
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO crops (id, content_type, data) VALUES (?, ?, ?)", rows)
        for path in done:
            os.remove(path)
        return len(rows)


def read_old_crop(path):
    """(id, content type, bytes) of a crop file of the old layout, or None for a file that is not one."""
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            data = f.read()
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("id"), str):
        return None
    return header["id"], header.get("content_type"), data

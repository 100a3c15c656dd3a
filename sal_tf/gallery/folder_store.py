"""The embedded gallery store in a folder: exact search in process (numpy BLAS), durable through an append-only log.

Layout of the folder:

    store.json           format, dim, distance, and the model that made the embeddings once known
    snapshot.npz         every item at the last compaction, and the log generation that follows it
    log-<gen>.bin        the adds and deletes since that snapshot (`append_log`: a magic, then records
                         each with a CRC-protected header and a CRC-32 of its payload)
    LOCK                 the single-writer lock (fcntl.flock), holding the owner's pid

Durability. `add` / `delete` append one record (its whole batch) to the log and fsync it before
they change memory and return, so an acknowledged change survives `kill -9` (and a power cut, as
far as the disk honours fsync). Opening replays the log over the snapshot. Only the last record
can be incomplete (each is fsynced before the next starts): a record that cannot be read with no
intact record after it is a torn tail, truncated at open with a warning; one with an intact record
after it is damage: opening raises `StoreCorruptedError` naming the byte, the file left as it was,
and `repair` (`sal-search repair --store=...`) keeps every intact record. A store written before
log version 2 (`sal_tf.gallery.faiss`, version 1) opens, and its log is compacted into version 2.
Compaction writes a new snapshot atomically (temporary file, fsync, rename, fsync of the folder)
once the log outgrows max(`compact_bytes`, half the snapshot), then starts the next log
generation and deletes the old one; a crash at any step leaves either the old snapshot with its
log or the new snapshot (with an empty or missing log, created at open). An add costs O(batch);
compaction O(gallery), amortised to O(1) per item by the growing threshold.

Search. The live embeddings are one contiguous float32 matrix (an anonymous memory map grown in
place: `row_matrix.py`; a delete moves the last row into the hole), searched exactly by one BLAS product per block of queries; filters are a boolean mask
over per-row camera / timestamp arrays, applied before the top-k selection (a selective filter
gathers just its rows). Reported distances are recomputed in float64 for the hits
(`base.exact_distances`).

Concurrency. A `LOCK` file locked with `fcntl.flock` keeps a second process (or a second handle)
out with `StoreLockedError`. Within the process, searches share a reader lock; a change holds the
log lock while it appends and fsyncs (so memory applies changes in log order) and the writer lock
only while it applies them.
"""

import contextlib
import datetime
import errno
import fcntl
import glob
import json
import logging
import os
import struct
import threading
import time
import zipfile

import numpy as np

from sal_tf.evaluation.distance import check_distance
from sal_tf.gallery import ann_index, append_log, base
from sal_tf.gallery.hits import Hit
from sal_tf.gallery.row_matrix import RowMatrix
from sal_tf.utils import fsync_folder, write_atomically

FORMAT = "sal_tf.gallery.folder"
VERSION = 2  # log version 2 (`append_log`)
OLD_FORMAT = ("sal_tf.gallery.faiss", 1)  # log version 1, written before the module was named for what it is
LEGACY_MODEL_FILE = "model.json"  # where `sal-search add` noted the model before store.json held it
META_FILE = "store.json"
SNAPSHOT_FILE = "snapshot.npz"
LOCK_FILE = "LOCK"
COMPACT_BYTES = 256 << 20  # least log size that triggers a compaction
SPARSE_FILTER = 0.25  # a filter keeping fewer rows than this fraction gathers them instead of masking
BLOCK_SCORES = 1 << 24  # scores held at once (queries × rows): 64 MiB

logger = logging.getLogger(__name__)


def is_store_folder(path):
    return os.path.isfile(os.path.join(path, META_FILE))


def read_meta(folder):
    """store.json of the store in `folder` (today's format or `OLD_FORMAT`); ValueError for anything else."""
    path = os.path.join(folder, META_FILE)
    with open(path) as f:
        meta = json.load(f)
    if (meta.get("format"), meta.get("version")) not in ((FORMAT, VERSION), OLD_FORMAT):
        raise ValueError(
            f"{path!r} is not a version-{VERSION} {FORMAT} store (format {meta.get('format')!r}, version "
            f"{meta.get('version')!r})."
        )
    return meta


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _log_name(generation):
    return f"log-{generation:08d}.bin"


def _encode_strings(values):
    """(uint8 blob, int64 offsets [n+1], bool known [n]) of a list of str or None; one item's bytes at a
    time besides the blob (a list of every item's bytes took ~0.5 GiB at 10 M ids)."""
    n = len(values)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter((len((v or "").encode("utf-8")) for v in values), np.int64, count=n), out=offsets[1:])
    blob = "".join(v or "" for v in values).encode("utf-8")  # UTF-8 of a concatenation: the items' UTF-8 in turn
    return np.frombuffer(blob, np.uint8), offsets, np.fromiter((v is not None for v in values), bool, count=n)


def _decode_strings(blob, offsets, known):
    raw = blob.tobytes()
    return [raw[a:b].decode("utf-8") if k else None for a, b, k in zip(offsets[:-1], offsets[1:], known)]


def _encode_add(vectors, items):
    meta = json.dumps([[i.id, i.camera, i.timestamp, i.path, i.person_id] for i in items]).encode("utf-8")
    return (
        bytes([append_log.OP_ADD])
        + struct.pack("<I", len(meta))
        + meta
        + np.ascontiguousarray(vectors, np.float32).tobytes()
    )


def _encode_delete(ids):
    return bytes([append_log.OP_DELETE]) + json.dumps(list(ids)).encode("utf-8")


class FolderStore(base.GalleryStore):
    """The embedded store in a folder (module docstring). Open it with `open_store` or `FolderStore.open`."""

    kind = "folder"

    def __init__(self, folder, dim, distance, compact_bytes=COMPACT_BYTES, index=None):
        self.location = folder
        self._index = ann_index.AnnIndex(index, dim)  # approximate search (ann_index.py), opened with the snapshot
        self.dim = dim
        self.distance = distance
        self.compact_bytes = int(compact_bytes)
        self._lock_fd = None
        self._log_fd = None
        self._log_bytes = 0
        self._generation = 0
        self._snapshot_bytes = 0
        self._recovered_bytes = 0
        self._rw = _ReadWriteLock()
        self._log_lock = threading.Lock()
        self._closed = False
        self._meta = {}
        self._reset(0)

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, folder, dim=None, distance="euclidean", compact_bytes=COMPACT_BYTES, index=None):
        """Opens the store in `folder`, creating it when `dim` is given and the folder holds none.

        `distance` applies to a new store; an existing one keeps its own. `index`: "auto", "flat",
        "hnsw" or "ivf", the approximate index searches use (`sal_tf/gallery/ann_index.py`); None:
        what the store's saved index was opened with, else "auto".

        Raises:
            FileNotFoundError: no store there and no `dim` to create one.
            ValueError: `dim` differs from the store's, or the folder holds something else.
            StoreLockedError: another process (or handle) has it open.
        """
        folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        if dim is not None:
            dim = base.check_dim(dim)
        check_distance(distance)
        ann_index.check_kind(index)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"Gallery store {folder!r} is a file; expected a store folder (or a new path).")
        if is_store_folder(folder) and dim is not None:
            with open(os.path.join(folder, META_FILE)) as f:
                stored = int(json.load(f).get("dim", 0))
            if stored != dim:
                raise ValueError(f"Gallery store {folder!r} holds {stored}-d embeddings; `dim`={dim} was given.")
        if not is_store_folder(folder):
            if dim is None:
                raise FileNotFoundError(
                    f"No gallery store in {folder!r} (no {META_FILE}); give the embedding width (dim) to create one."
                )
            if os.path.isdir(folder) and os.listdir(folder) and not set(os.listdir(folder)) <= {LOCK_FILE}:
                raise ValueError(
                    f"{folder!r} is a folder with other files and no {META_FILE}: not a gallery store. "
                    "Give an empty or new folder."
                )
            os.makedirs(folder, exist_ok=True)
        store = cls(folder, dim or 0, distance, compact_bytes, index)
        try:
            store._lock()
            store._load_or_create(dim, distance)
        except BaseException:
            store._release()
            raise
        return store

    def _lock(self):
        path = os.path.join(self.location, LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise base.StoreLockedError(
                    f"Gallery store {self.location!r} is open in another process (pid {owner}) or another "
                    "handle of this one; one writer at a time. Close it first (or use a Milvus store to share one)."
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _load_or_create(self, dim, distance):
        meta_path = os.path.join(self.location, META_FILE)
        if not os.path.isfile(meta_path):
            created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            meta = {"format": FORMAT, "version": VERSION, "dim": dim, "distance": distance, "created": created}
            write_atomically(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")  # fsyncs the folder
        self._meta = read_meta(self.location)
        if dim is not None and int(self._meta["dim"]) != dim:
            raise ValueError(
                f"Gallery store {self.location!r} holds {self._meta['dim']}-d embeddings; `dim`={dim} was given."
            )
        self.dim, self.distance = int(self._meta["dim"]), self._meta["distance"]
        if distance != self.distance:
            logger.info("Gallery store %s keeps its distance %s", self.location, self.distance)
        self._reset(0)
        for stale in glob.glob(os.path.join(self.location, f".{SNAPSHOT_FILE}.tmp-*")):
            os.remove(stale)  # an interrupted compaction
        self._load_snapshot()
        self._index = ann_index.AnnIndex(self._index.kind, self.dim)
        self._index.open(self.location, self._generation, self._vectors[: self._n])  # the log replays into it
        for old in glob.glob(os.path.join(self.location, "log-*.bin")):
            if old != self._log_path():
                os.remove(old)  # a compaction's predecessor, or a log no snapshot leads to
        old_log = self._replay_log() == 1
        self._open_log()
        if old_log or self._meta.get("format") != FORMAT:
            self._upgrade(old_log)

    def _upgrade(self, old_log):
        """Rewrites an older store's store.json (and a version-1 log, by a compaction) in today's format."""
        self._write_meta(format=FORMAT, version=VERSION, model=self.model)
        if old_log:
            self._compact()
        logger.info("Gallery store %s: upgraded to %s version %d", self.location, FORMAT, VERSION)

    def _write_meta(self, **changes):
        meta = {k: v for k, v in {**self._meta, **changes}.items() if v is not None}
        write_atomically(os.path.join(self.location, META_FILE), json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self._meta = meta

    def _log_path(self, generation=None):
        return os.path.join(self.location, _log_name(self._generation if generation is None else generation))

    def _reset(self, capacity):
        self._n = 0
        self._matrix = RowMatrix(self.dim, capacity)  # `_vectors`: grown in place (row_matrix.py)
        self._camera = np.zeros(capacity, np.int64)
        self._has_camera = np.zeros(capacity, bool)
        self._time = np.full(capacity, np.nan, np.float64)
        self._ids, self._paths, self._person = [], [], []
        self._row = {}

    @property
    def _vectors(self):
        """float32 [capacity, dim]: the first `_n` rows are the live embeddings."""
        return self._matrix.array

    def _load_snapshot(self):
        path = os.path.join(self.location, SNAPSHOT_FILE)
        if not os.path.isfile(path):
            return
        try:
            self._read_snapshot(path)
        except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as e:
            raise base.StoreCorruptedError(
                f"{path!r} is damaged ({type(e).__name__}: {e}); it cannot be read, so the store cannot open. "
                "Restore the store's folder from a backup."
            ) from None
        self._row = {item_id: row for row, item_id in enumerate(self._ids)}
        self._snapshot_bytes = os.path.getsize(path)

    def _read_snapshot(self, path):
        """Loads every item of the snapshot at `path` (its zip members carry CRC-32s, checked as they are read)."""
        with np.load(path, allow_pickle=False) as s:
            if int(s["dim"]) != self.dim:
                raise base.StoreCorruptedError(f"{path!r} holds {int(s['dim'])}-d rows; the store is {self.dim}-d.")
            self._generation = int(s["generation"])
            self._matrix = RowMatrix(self.dim)
            with s.zip.open("vectors.npy") as member:
                self._n = self._matrix.load_npy(member, path)  # straight into the store's matrix: no copy
            self._camera, self._has_camera = s["camera"].astype(np.int64), s["has_camera"].astype(bool)
            self._time = s["timestamp"].astype(np.float64)
            self._ids = _decode_strings(s["id_blob"], s["id_offsets"], np.ones(self._n, bool))
            self._paths = _decode_strings(s["path_blob"], s["path_offsets"], s["has_path"])
            person, has_person = s["person_id"], s["has_person"]
            self._person = [int(p) if h else None for p, h in zip(person, has_person)]

    def _replay_log(self):
        """Applies the log over the snapshot; truncates a torn tail (`append_log`). Returns the log's version."""
        path = self._log_path()
        if not os.path.isfile(path):
            return 2
        found = append_log.read(path, self._apply, self.location)
        if found.end < found.size:
            logger.warning(
                "Gallery store %s: dropped an incomplete last log record (%d bytes at byte %d, an unacknowledged "
                "write cut by a crash; nothing intact follows it).",
                self.location,
                found.size - found.end,
                found.end,
            )
            self._recovered_bytes = found.size - found.end
            with open(path, "r+b") as f:
                f.truncate(found.end)
                f.flush()
                os.fsync(f.fileno())
        self._log_bytes = found.end
        return found.version

    def _open_log(self):
        path = self._log_path()
        fresh = not os.path.isfile(path) or os.path.getsize(path) == 0
        self._log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if fresh:
            os.write(self._log_fd, append_log.MAGIC_V2)
            os.fsync(self._log_fd)
            fsync_folder(self.location)
            self._log_bytes = append_log.MAGIC_SIZE

    # --- changes ----------------------------------------------------------------------------

    def _check_open(self):
        if self._closed:
            raise RuntimeError(f"Gallery store {self.location!r} is closed.")

    def _append(self, payload):
        """Appends one record and fsyncs it (called with the log lock held); a failed write is undone."""
        record = append_log.encode(payload)
        try:
            view = memoryview(record)
            while view:
                view = view[os.write(self._log_fd, view) :]
            os.fsync(self._log_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(self._log_fd, self._log_bytes)
            raise
        self._log_bytes += len(record)

    def _apply(self, payload):
        """Applies one log record to memory (the caller holds the writer lock, or is opening)."""
        if payload[0] == append_log.OP_ADD:
            (length,) = struct.unpack_from("<I", payload, 1)
            rows = json.loads(payload[5 : 5 + length].decode("utf-8"))
            vectors = np.frombuffer(payload, np.float32, offset=5 + length).reshape(len(rows), self.dim)
            self._apply_add(vectors, [base.Item(*row) for row in rows])
        elif payload[0] == append_log.OP_DELETE:
            for item_id in json.loads(payload[1:].decode("utf-8")):
                self._apply_delete(item_id)
        else:
            raise base.StoreCorruptedError(f"Unknown log record type {payload[0]} in {self.location!r}.")

    def _grow(self, needed):
        capacity = self._matrix.capacity
        if needed <= capacity:
            return
        capacity = max(needed, int(capacity * 1.5), 1024)
        n = self._n
        self._matrix.grow(capacity, n)  # in place; capacity not yet written takes no memory

        def grown(array):  # rows past n are written before they are read (_set_row): zeros, untouched
            out = np.zeros((capacity, *array.shape[1:]), array.dtype)
            out[:n] = array[:n]
            return out

        self._camera, self._has_camera, self._time = grown(self._camera), grown(self._has_camera), grown(self._time)

    def _set_row(self, row, vector, item):
        self._vectors[row] = vector
        self._camera[row] = item.camera if item.camera is not None else 0
        self._has_camera[row] = item.camera is not None
        self._time[row] = item.timestamp if item.timestamp is not None else np.nan
        self._paths[row] = item.path
        self._person[row] = item.person_id

    def _apply_add(self, vectors, items):
        new = sum(item.id not in self._row for item in items)
        self._grow(self._n + new)
        rows = []
        for vector, item in zip(vectors, items):
            row = self._row.get(item.id)
            if row is None:
                row = self._n
                self._n += 1
                self._row[item.id] = row
                self._ids.append(item.id)
                self._paths.append(None)
                self._person.append(None)
            self._set_row(row, vector, item)
            rows.append(row)
        self._index.on_add(rows, vectors)

    def _apply_delete(self, item_id):
        row = self._row.pop(item_id, None)
        if row is None:
            return False
        last = self._n - 1
        if row != last:  # the last row fills the hole: the matrix stays contiguous
            self._vectors[row] = self._vectors[last]
            self._camera[row], self._has_camera[row] = self._camera[last], self._has_camera[last]
            self._time[row] = self._time[last]
            self._ids[row], self._paths[row], self._person[row] = self._ids[last], self._paths[last], self._person[last]
            self._row[self._ids[row]] = row
        self._ids.pop()
        self._paths.pop()
        self._person.pop()
        self._has_camera[last], self._time[last] = False, np.nan
        self._n = last
        self._index.on_delete(row, last)
        return True

    def add(self, embeddings, items):
        self._check_open()
        vectors, items = base.check_batch(embeddings, items, self.dim)
        if not items:
            return []
        payload = _encode_add(vectors, items)
        with self._log_lock:
            self._check_open()
            self._append(payload)
            with self._rw.write():
                self._apply_add(vectors, items)
            self._maybe_compact()
        return [item.id for item in items]

    def delete(self, id):
        self._check_open()
        base.check_id(id)
        with self._log_lock:
            self._check_open()
            if id not in self._row:
                return False
            self._append(_encode_delete([id]))
            with self._rw.write():
                self._apply_delete(id)
            self._maybe_compact()
        return True

    # --- compaction -------------------------------------------------------------------------

    def _maybe_compact(self):
        built = self._index.build_if_due(self._vectors[: self._n], self._rw.write)  # saved by the compaction
        if built or self._log_bytes > max(self.compact_bytes, self._snapshot_bytes // 2):
            self._compact()

    def compact(self):
        """Writes every item into a new snapshot and starts an empty log (also done automatically)."""
        self._check_open()
        with self._log_lock:
            self._compact()

    def _compact(self):
        generation = self._generation + 1
        n = self._write_snapshot(generation)  # its encoded ids and arrays freed before the index is saved
        self._index.save(self.location, generation, self._vectors[:n], self._rw.write)
        old_fd, old_path = self._log_fd, self._log_path()
        self._generation = generation
        self._snapshot_bytes = os.path.getsize(os.path.join(self.location, SNAPSHOT_FILE))
        self._open_log()
        os.close(old_fd)
        os.remove(old_path)

    def _write_snapshot(self, generation):
        """Writes every item into snapshot.npz (temporary file, fsync, rename, fsync of the folder) as
        `generation`; returns the rows written."""
        with self._rw.read():
            n = self._n
            ids = _encode_strings(self._ids)
            paths = _encode_strings(self._paths)
            arrays = {
                "vectors": self._vectors[:n],
                "camera": self._camera[:n],
                "has_camera": self._has_camera[:n],
                "timestamp": self._time[:n],
                "person_id": np.fromiter((p or 0 for p in self._person), np.int64, count=n),
                "has_person": np.fromiter((p is not None for p in self._person), bool, count=n),
                "id_blob": ids[0],
                "id_offsets": ids[1],
                "path_blob": paths[0],
                "path_offsets": paths[1],
                "has_path": paths[2],
                "generation": np.int64(generation),
                "dim": np.int64(self.dim),
            }
            final = os.path.join(self.location, SNAPSHOT_FILE)
            tmp = os.path.join(self.location, f".{SNAPSHOT_FILE}.tmp-{os.getpid()}")
            try:
                with open(tmp, "wb") as f:
                    np.savez(f, **arrays)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
        fsync_folder(self.location)
        return n

    # --- reading ----------------------------------------------------------------------------

    def _item(self, row):
        camera = int(self._camera[row]) if self._has_camera[row] else None
        timestamp = float(self._time[row]) if not np.isnan(self._time[row]) else None
        return base.Item(self._ids[row], camera, timestamp, self._paths[row], self._person[row])

    def get(self, id):
        self._check_open()
        base.check_id(id)
        with self._rw.read():
            row = self._row.get(id)
            return None if row is None else self._item(row)

    def count(self):
        self._check_open()
        return self._n

    def _mask(self, n, exclude_camera, cameras, time_range):
        """bool [n] of the rows that pass the filters, or None for no filter."""
        if exclude_camera is None and cameras is None and time_range is None:
            return None
        keep = np.ones(n, bool)
        if exclude_camera is not None:
            keep &= self._has_camera[:n] & (self._camera[:n] != exclude_camera)
        if cameras is not None:
            # kind="sort" compares with each camera in turn (0.3 ms at 1 M rows); the default for
            # integers builds a lookup table (8 ms at 1 M: benchmarks/ann_index.py, one_camera)
            keep &= self._has_camera[:n] & np.isin(self._camera[:n], cameras, kind="sort")
        if time_range is not None:
            t = self._time[:n]
            with np.errstate(invalid="ignore"):
                keep &= (t >= time_range[0]) & (t <= time_range[1])
        return keep

    def search(self, queries, k, exclude_camera=None, cameras=None, time_range=None):
        self._check_open()
        q, k, exclude_camera, cameras, time_range = base.check_search(
            queries, k, exclude_camera, cameras, time_range, self.dim
        )
        with self._rw.read():
            n = self._n
            keep = self._mask(n, exclude_camera, cameras, time_range)
            found = self._index.search(q, k, self._vectors[:n], keep)  # None: exact, below
            if found is not None:
                return self._hits(q, found)
            rows = None if keep is None else np.flatnonzero(keep)
            if rows is not None and len(rows) >= SPARSE_FILTER * n:
                penalty, rows = np.where(keep, np.float32(0), np.float32(-np.inf)), None
            else:
                penalty = None
            matrix = self._vectors[:n] if rows is None else self._vectors[rows]
            candidates = len(matrix) if penalty is None else int(keep.sum())
            k_eff = min(k, candidates)
            if k_eff == 0:
                return [[] for _ in q]
            results = []
            block = max(1, BLOCK_SCORES // max(len(matrix), 1))
            for start in range(0, len(q), block):
                qb = q[start : start + block]
                scores = qb @ matrix.T
                if penalty is not None:
                    scores += penalty
                if k_eff < scores.shape[1]:
                    top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
                else:
                    top = np.broadcast_to(np.arange(scores.shape[1]), (len(qb), scores.shape[1]))
                order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
                top = np.take_along_axis(top, order, axis=1)
                found = top if rows is None else rows[top]
                dist = base.exact_distances(qb, self._vectors[found], self.distance)
                for r, d in zip(found, dist):
                    order = np.argsort(d, kind="stable")
                    results.append([Hit.of(self._item(int(r[j])), d[j]) for j in order])
            return results

    def _hits(self, queries, found):
        """`Hit`s of each query's `found` rows (−1: none), nearest first by the exact distance."""
        dist = base.exact_distances(queries, self._vectors[np.maximum(found, 0)], self.distance)
        return [
            [Hit.of(self._item(int(r[j])), d[j]) for j in np.argsort(d, kind="stable") if r[j] >= 0]
            for r, d in zip(found, dist)
        ]

    def stats(self):
        self._check_open()
        with self._rw.read():
            return {
                "kind": self.kind,
                "count": self._n,
                "dim": self.dim,
                "distance": self.distance,
                "location": self.location,
                "vectors_bytes": int(self._n * self.dim * 4),
                "capacity": len(self._vectors),
                "log_generation": self._generation,
                "log_bytes": self._log_bytes,
                "snapshot_bytes": self._snapshot_bytes,
                "compact_bytes": self.compact_bytes,
                "recovered_bytes": self._recovered_bytes,
                **self._index.stats(),
                **({"model": self.model} if self.model else {}),
            }

    @property
    def model(self):
        """The model that made the embeddings (store.json; a store's older `model.json` note), or None."""
        return base.recorded_model(self._meta, os.path.join(self.location, LEGACY_MODEL_FILE))

    def record_model(self, model):
        """Records `model` (a path or name) in store.json as the model that made the embeddings."""
        self._check_open()
        with self._log_lock:
            if model and model != self._meta.get("model"):
                self._write_meta(model=model)

    def ids(self):
        self._check_open()
        with self._rw.read():
            return list(self._ids)

    def items_of_person(self, person_id):
        person_id = base.check_person_id(person_id)
        self._check_open()
        with self._rw.read():
            items = [self._item(row) for row, p in enumerate(self._person) if p == person_id]
        return base.in_time_order(items)

    # --- repair -----------------------------------------------------------------------------

    @classmethod
    def repair(cls, folder):
        """Rewrites the store's log with every intact record (`append_log.intact_records`); returns the
        `append_log.Repair` summary. The damaged log is kept beside it as `damaged-<log name>-<UTC time>`.
        A log without damage is left as it is.

        Raises:
            FileNotFoundError: no store in `folder`; StoreLockedError: it is open.
        """
        folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        if not is_store_folder(folder):
            raise FileNotFoundError(f"No gallery store in {folder!r} (no {META_FILE}).")
        store = cls(folder, 0, "euclidean")
        store._lock()
        try:
            store._meta = read_meta(folder)
            snapshot = os.path.join(folder, SNAPSHOT_FILE)
            if os.path.isfile(snapshot):
                with np.load(snapshot, allow_pickle=False) as s:
                    store._generation = int(s["generation"])
            path = store._log_path()
            if not os.path.isfile(path):
                return append_log.Repair(0, 0, [], 2)
            payloads, report = append_log.intact_records(path)
            if report.dropped or report.recovered:
                store._rewrite_log(path, payloads)
            return report
        finally:
            store._release()

    def _rewrite_log(self, path, payloads):
        """Replaces the log at `path` by `payloads` in version-2 records (atomically), keeping the old file."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        os.link(path, os.path.join(self.location, f"damaged-{os.path.basename(path)}-{stamp}"))
        tmp = os.path.join(self.location, f".{os.path.basename(path)}.repair-{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(append_log.MAGIC_V2)
            for payload in payloads:
                f.write(append_log.encode(payload))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_folder(self.location)
        if self._meta.get("format") != FORMAT:
            self._write_meta(format=FORMAT, version=VERSION, model=self.model)

    # --- closing ----------------------------------------------------------------------------

    def _release(self):
        for fd in (self._log_fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # closing the descriptor drops the flock
        self._log_fd = self._lock_fd = None

    def close(self):
        with self._log_lock:
            if self._closed:
                return
            with self._rw.write():
                self._closed = True
                self._release()
                self._reset(0)

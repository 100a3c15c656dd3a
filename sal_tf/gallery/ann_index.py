"""Approximate search for the embedded store: faiss HNSW or IVF-PQ over the store's rows, filters inside.

The folder store (`sal_tf/gallery/folder_store.py`) keeps every embedding in one float32 matrix
and searches it exactly; this module is its optional index (`open_store(..., index=...)`):

* `flat`: none (exact, as before).
* `hnsw`: faiss `IndexHNSWFlat` (Malkov & Yashunin 2018), M=32; its internal ids are this module's
  labels (one per vector ever added: HNSW cannot remove, so a deleted or replaced row's label is a
  tombstone left out of every search by the selector, and the graph is rebuilt at compaction once
  tombstones pass a third of it).
* `ivf`: faiss IVF with 4-bit fast-scan PQ codes (`IVF<nlist>,PQ<dim/2>x4fs`, Jégou et al. 2011;
  the code size the `ivf_sweep` rows of benchmarks/results/gallery_store_ivf_sweep_cpu_2core.jsonl
  chose), `remove_ids` on delete; the RESCORE·k nearest codes (more where the calibration needs:
  RESCORE_STEPS) are re-scored exactly against the store's float32 matrix (no second copy of the
  vectors). It needs training: below IVF_MIN_ROWS rows the store stays exact, and it is retrained
  at compaction once the gallery has grown RETRAIN_GROWTH-fold since.
* `auto`: exact below AUTO_MIN_ROWS (where one exact query stops costing less than the index's
  build and memory: benchmarks/ann_index.py, case `auto`), `hnsw` up to AUTO_IVF_ROWS, `ivf` above
  (HNSW keeps a second float32 copy plus its graph: ~1.6 GiB a million 128-d rows more).

Filters are honoured inside the search: the store's row mask becomes a faiss `IDSelectorBitmap`
over labels (`SearchParametersHNSW` / `SearchParametersIVF(sel=...)`); a filter keeping at most
EXACT_FILTER_ROWS rows is answered exactly over those rows (`search` returns None), as is any
search while no index is built. efSearch / nprobe grow as 1 / (fraction kept) for a filter.

The recall setting (efSearch / nprobe) is measured, not guessed: at each build and save, and each
time the gallery has grown by RECALIBRATE_GROWTH, the smallest step (EF_STEPS / NPROBE_STEPS) whose
recall@10 against exact search reaches TARGET_RECALL on CALIBRATION_QUERIES new queries
(`calibration_queries`: gallery rows mixed with other gallery rows, none of them a row of the
index) is kept; `stats()` reports it. The gallery's own rows as queries (each one's own row left
out) overrated new queries: they have near-duplicates in the gallery (frames of one track; the
benchmark's perturbed copies) that a new view of the person does not (1 M real-model rows: own
rows 0.99 at efSearch 48, the service's new queries 0.944).

Saved with the store's snapshot (`save`, from the store's compaction): `index-<gen>.faiss`
(faiss.write_index to a temporary file, fsync, rename), `index-<gen>.labels.npy` (the label of each
snapshot row) and, last, `index-<gen>.json` with both files' sizes and CRC-32s. Opening the same
generation checks them; a missing, damaged or mismatched index is rebuilt from the snapshot with a
logged warning naming the file and why (never used silently), and the rebuild is saved at once.
"""

import contextlib
import glob
import json
import logging
import math
import os
import time
import zlib

import numpy as np

from sal_tf.utils import fsync_folder, write_atomically

KINDS = ("auto", "flat", "hnsw", "ivf")
FORMAT = "sal_tf.gallery.ann_index"
VERSION = 1
AUTO_MIN_ROWS = 50_000
AUTO_IVF_ROWS = 4_000_000
IVF_MIN_ROWS = 4096
RETRAIN_GROWTH = 4
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
# From 32 / 16: the gallery's own rows overestimate recall where it holds near-duplicates (1 M real-model
# rows: nprobe 4 calibrated 0.991, new queries found 0.945; efSearch 96: 0.992 vs 0.982).
EF_STEPS = (32, 48, 64, 96, 128, 192, 256, 384, 512)
EF_MAX = 2048
NPROBE_STEPS = (16, 24, 32, 48, 64, 96, 128, 192, 256)
RESCORE = 32  # IVF codes re-scored exactly per hit wanted, unless calibration needs more (RESCORE_STEPS)
RESCORE_STEPS = (64, 128, 256, 512)  # tried once more cells stop paying (10 M rows: 32 found 0.85)
RESCORE_BYTES = 64 << 20  # candidate rows gathered at once for the exact re-score
ADD_CHUNK = 1 << 20  # rows a fresh build adds to faiss at a time
MAX_APPROX_K = 1024  # larger top-k is answered exactly
EXACT_FILTER_ROWS = 20_000
TARGET_RECALL = 0.97  # on calibration_queries, which are harder than new views of enrolled people
CALIBRATION = "mixed-rows-rescore"  # what the saved setting was measured on; an index saved otherwise is measured again
CALIBRATION_QUERIES = 200
CALIBRATION_MIX = 0.25  # weight of the other gallery row in a calibration query
CALIBRATION_K = 10
RECALIBRATE_GROWTH = 1.5
IVF_PLATEAU = 0.002  # an nprobe step gaining less recall than this ends the calibration at the step before
TOMBSTONE_REBUILD = 1 / 3
TRAIN_PER_LIST = 64
MAX_LISTS = 4096

logger = logging.getLogger(__name__)


def check_kind(kind):
    """`kind` if it is one of KINDS or None (the kind the store's saved index was asked for, else auto)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"`index` must be one of {KINDS}. Received: {kind!r}")
    return kind


def _faiss():
    import faiss  # imported on first use: the flat store never needs it

    return faiss


def ivf_lists(rows):
    """IVF cells for `rows` vectors: 4·sqrt(rows) (faiss's guideline), at least TRAIN_PER_LIST rows each,
    at most MAX_LISTS (k-means on 2 cores; 2.4 k rows a cell at 10 M)."""
    return int(max(1, min(4 * math.sqrt(rows), rows // TRAIN_PER_LIST, MAX_LISTS)))


def _pq_subquantizers(dim):
    """Largest divisor of `dim` up to dim / 2 (64 for 128-d: 32 bytes a vector)."""
    return max(m for m in range(1, max(1, dim // 2) + 1) if dim % m == 0)


def _crc_of(path):
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def _fsynced_replace(tmp, final):
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def _file_names(folder, generation):
    stem = os.path.join(folder, f"index-{generation:08d}")
    return stem + ".faiss", stem + ".labels.npy", stem + ".json"


class AnnIndex:
    """The approximate index of one folder store (module docstring); the store calls every method
    with its own locks held (changes under its writer lock, searches under its reader lock)."""

    def __init__(self, kind, dim, exact_filter_rows=EXACT_FILTER_ROWS):
        self.kind = check_kind(kind)
        self.dim = int(dim)
        self.exact_filter_rows = int(exact_filter_rows)
        self._clear()

    def _clear(self):
        self.built = None  # "hnsw" / "ivf" once an index exists
        self._faiss_index = None
        self._label_of_row = np.zeros(0, np.int64)
        self._row_of_label = np.zeros(0, np.int64)
        self._labels = 0  # labels handed out (HNSW: its ntotal)
        self._tombstones = 0
        self._identity = True  # label == row for every row (fresh build, appends only)
        self._live_bits = None
        self.setting, self.recall, self.trained_rows, self.build_s = None, None, 0, None
        self.calibrated_rows = 0  # the gallery's size when the setting was measured

    # --- which index, when -------------------------------------------------------------------

    def due_kind(self, rows):
        """The index the store should have at `rows` rows (None: exact)."""
        if self.kind == "flat":
            return None
        if self.kind == "hnsw":
            return "hnsw"
        if self.kind == "ivf":
            return "ivf" if rows >= IVF_MIN_ROWS else None
        if rows < AUTO_MIN_ROWS:
            return None
        return "hnsw" if rows < AUTO_IVF_ROWS else "ivf"

    def _stale(self, rows):
        """True when the built index should be rebuilt (at a compaction)."""
        due = self.due_kind(rows)
        if due != self.built:
            return True
        if self.built == "hnsw":
            return self._tombstones > TOMBSTONE_REBUILD * max(self._labels, 1)
        return self.built == "ivf" and rows > RETRAIN_GROWTH * self.trained_rows

    def build_if_due(self, vectors, install_lock):
        """Builds the index when the gallery (`vectors`, the store's live rows) reached its size;
        the build runs outside `install_lock` (searches go on exactly) and is installed under it.
        Returns True when it built one (the store then compacts, which saves it). A built index
        has its setting measured again each time the gallery grew RECALIBRATE_GROWTH-fold (an
        `hnsw` store grows from empty; compactions are far apart)."""
        due = self.due_kind(len(vectors))
        if self.built is not None:
            if len(vectors) >= RECALIBRATE_GROWTH * max(self.calibrated_rows, CALIBRATION_QUERIES):
                self.calibrate(vectors)  # the gallery grew since the setting was measured
            return False
        if due is None:
            return False
        fresh = self._fresh(due, vectors)
        with install_lock():
            self._adopt(fresh)
        return True

    # --- building ----------------------------------------------------------------------------

    def _built(self, kind, vectors):
        """A fresh state dict of a `kind` index over `vectors` (labels = rows), not yet calibrated."""
        faiss = _faiss()
        start = time.perf_counter()
        vectors = np.ascontiguousarray(vectors, np.float32)
        n = len(vectors)
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, HNSW_M)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.add(vectors)
        else:
            nlist = ivf_lists(n)
            index = faiss.index_factory(self.dim, f"IVF{nlist},PQ{_pq_subquantizers(self.dim)}x4fs")
            faiss.extract_index_ivf(index).cp.seed = 0
            sample = np.random.default_rng(0).choice(n, min(n, TRAIN_PER_LIST * nlist), replace=False)
            index.train(vectors[np.sort(sample)])
            for at in range(0, n, ADD_CHUNK):  # faiss encodes a whole call at once: 0.4 GiB more at 10 M rows
                index.add_with_ids(vectors[at : at + ADD_CHUNK], np.arange(at, min(n, at + ADD_CHUNK), dtype=np.int64))
        state = {"built": kind, "faiss_index": index, "label_of_row": np.arange(n, dtype=np.int64)}
        state.update(trained_rows=n if kind == "ivf" else 0, build_s=round(time.perf_counter() - start, 2))
        logger.info("Built a %s index over %d rows in %.1f s", kind, n, state["build_s"])
        return state

    def _fresh(self, kind, vectors):
        """A new, calibrated `AnnIndex` of `kind` over `vectors` (this one is not touched)."""
        fresh = AnnIndex(self.kind, self.dim, self.exact_filter_rows)
        fresh._install(fresh._built(kind, vectors))
        fresh.calibrate(vectors)
        return fresh

    def _adopt(self, other):
        """Takes over the whole state of `other` (a freshly built index)."""
        self.__dict__.update(other.__dict__)

    def _install(self, state, setting=None, recall=None, calibrated_rows=None):
        self._clear()
        self.built, self._faiss_index = state["built"], state["faiss_index"]
        self.trained_rows, self.build_s = state.get("trained_rows", 0), state.get("build_s")
        label_of_row = np.asarray(state["label_of_row"], np.int64)
        self._labels = int(self._faiss_index.ntotal) if self.built == "hnsw" else int(label_of_row.max(initial=-1) + 1)
        self._label_of_row = label_of_row  # the caller's fresh array (a build's arange, a loaded file)
        self._row_of_label = np.full(max(self._labels, 1), -1, np.int64)
        self._row_of_label[label_of_row] = np.arange(len(label_of_row))
        self._tombstones = self._labels - len(label_of_row) if self.built == "hnsw" else 0
        self._identity = bool(np.array_equal(label_of_row, np.arange(len(label_of_row))))
        self.setting, self.recall = setting, recall
        self.calibrated_rows = (len(label_of_row) if calibrated_rows is None else calibrated_rows) if setting else 0

    # --- changes (under the store's writer lock) ----------------------------------------------

    def on_add(self, rows, vectors):
        """Rows `rows` (int array; rows past the current count are appended in order) now hold `vectors`."""
        if self.built is None or not len(rows):
            return
        rows = np.asarray(rows, np.int64)
        n = len(self._label_of_row)
        replaced = rows[rows < n]
        if len(replaced):
            self._drop_labels(self._label_of_row[replaced])
            self._identity = False
        labels = np.arange(self._labels, self._labels + len(rows), dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, np.float32)
        if self.built == "hnsw":
            self._faiss_index.add(vectors)
        else:
            self._faiss_index.add_with_ids(vectors, labels)
        self._labels += len(rows)
        top = int(rows.max()) + 1
        if top > n:
            self._label_of_row = np.concatenate([self._label_of_row, np.full(top - n, -1, np.int64)])
        self._label_of_row[rows] = labels
        if self._labels > len(self._row_of_label):
            grown = np.full(max(self._labels, int(len(self._row_of_label) * 1.5)), -1, np.int64)
            grown[: len(self._row_of_label)] = self._row_of_label
            self._row_of_label = grown
        self._row_of_label[labels] = rows
        self._identity = self._identity and bool(np.array_equal(labels, rows))
        self._live_bits = None

    def on_delete(self, row, last):
        """Row `row` was deleted and the store moved its last row `last` into it."""
        if self.built is None:
            return
        self._drop_labels(self._label_of_row[[row]])
        if row != last:
            moved = self._label_of_row[last]
            self._label_of_row[row] = moved
            self._row_of_label[moved] = row
            self._identity = False
        self._label_of_row = self._label_of_row[:last]

    def _drop_labels(self, labels):
        self._row_of_label[labels] = -1
        if self.built == "hnsw":
            self._tombstones += len(labels)
        else:
            self._faiss_index.remove_ids(_faiss().IDSelectorBatch(np.ascontiguousarray(labels, np.int64)))
        self._live_bits = None

    # --- searching (under the store's reader lock) -------------------------------------------

    def search(self, queries, k, vectors, keep, setting=None):
        """Rows [m, k] (−1 where fewer match) of the top-k of unit `queries` among `vectors` (the store's
        live rows) kept by the bool mask `keep` (None: all), nearest first; None: search exactly.
        `setting`: efSearch / nprobe to use instead of the calibrated one."""
        setting = setting or self.setting
        if self.built is None or k > MAX_APPROX_K:
            return None
        kept = len(vectors) if keep is None else int(np.count_nonzero(keep))
        if keep is not None and kept <= self.exact_filter_rows:
            return None
        bits = self._selection(keep)
        faiss = _faiss()
        sel = None if bits is None else faiss.IDSelectorBitmap(self._labels, faiss.swig_ptr(bits))
        q = np.ascontiguousarray(queries, np.float32)
        widen = len(vectors) / max(kept, 1)  # a filter keeping 1/w of the rows: w times the search effort
        if self.built == "hnsw":
            ef = min(EF_MAX, math.ceil(setting["efSearch"] * widen))
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(ef, k))
            labels = self._faiss_index.search(q, k, params=params)[1]
            return self._rows(labels)
        nlist = self._faiss_index.nlist
        params = faiss.SearchParametersIVF(sel=sel, nprobe=min(nlist, math.ceil(setting["nprobe"] * widen)))
        wanted = min(k * setting.get("rescore", RESCORE), self._faiss_index.ntotal)
        labels = self._faiss_index.search(q, wanted, params=params)[1]
        return _rescored(q, self._rows(labels), vectors, k)

    def _rows(self, labels):
        rows = np.where(labels >= 0, self._row_of_label[np.maximum(labels, 0)], -1)
        return rows

    def _selection(self, keep):
        """uint8 little-endian bitmap over labels of the rows to return (None: every label is)."""
        if keep is None:
            if self.built != "hnsw" or not self._tombstones:
                return None
            if self._live_bits is None:
                self._live_bits = np.packbits(self._row_of_label[: self._labels] >= 0, bitorder="little")
            return self._live_bits
        if self._identity:
            wanted = np.zeros(self._labels, bool)
            wanted[: len(keep)] = keep
        else:
            wanted = np.zeros(self._labels, bool)
            wanted[self._label_of_row[: len(keep)][keep]] = True
        return np.packbits(wanted, bitorder="little")

    # --- recall calibration ------------------------------------------------------------------

    def calibrate(self, vectors):
        """Sets the smallest efSearch / nprobe step reaching TARGET_RECALL (recall@10 against exact
        search of `calibration_queries`, none of them a row of the index) and records the recall.
        Where a larger nprobe stops paying (IVF_PLATEAU), `ivf`'s recall is bound by the RESCORE·k codes
        re-scored (1 M real-model rows: 0.976 at nprobe 16, 0.982 at 32-64): it then re-scores more
        (RESCORE_STEPS) at that nprobe, while that pays."""
        if self.built is None:
            return
        faiss = _faiss()
        n = len(vectors)
        k = min(CALIBRATION_K, n)
        if k < 1:
            self.setting, self.recall, self.calibrated_rows = self.steps()[0], None, n  # nothing to measure
            return
        q = calibration_queries(vectors)
        truth = faiss.knn(q, np.ascontiguousarray(vectors, np.float32), k, metric=faiss.METRIC_INNER_PRODUCT)[1]

        def measure(setting):
            return recall_at(self.search(q, k, vectors, None, setting), truth)

        setting, recall = _first_reaching(measure, self.steps(), plateau=self.built == "ivf")
        if self.built == "ivf" and recall < TARGET_RECALL:  # more cells stopped paying: re-score more codes
            more = [{**setting, "rescore": r} for r in RESCORE_STEPS]
            setting, recall = _first_reaching(measure, more, plateau=True, best=(setting, recall))
        self.setting, self.recall, self.calibrated_rows = setting, recall, n
        logger.info("Calibrated the %s index: %s gives recall@%d %.3f", self.built, self.setting, k, self.recall)

    def steps(self):
        """The efSearch / nprobe settings calibration tries, in order."""
        if self.built == "hnsw":
            return [{"efSearch": ef} for ef in EF_STEPS]
        nlist = _faiss().extract_index_ivf(self._faiss_index).nlist
        return [{"nprobe": p, "rescore": RESCORE} for p in NPROBE_STEPS if p <= nlist] or [
            {"nprobe": nlist, "rescore": RESCORE}
        ]

    # --- saving and opening ------------------------------------------------------------------

    def save(self, folder, generation, vectors, install_lock):
        """Writes the index of the snapshot `generation` (the store's rows `vectors`, as it just wrote
        them; the store holds off changes), rebuilt first when due (installed under `install_lock`);
        removes other generations' index files."""
        if self._stale(len(vectors)):
            due = self.due_kind(len(vectors))
            fresh = AnnIndex(self.kind, self.dim, self.exact_filter_rows) if due is None else self._fresh(due, vectors)
            with install_lock():
                self._adopt(fresh)
        elif self.built is not None:
            self.calibrate(vectors)
        if self.built is not None:
            self._write(folder, generation)
        _remove_index_files(folder, keep=generation if self.built else None)

    def _write(self, folder, generation):
        faiss_path, labels_path, _ = _file_names(folder, generation)
        tag = f".tmp-{os.getpid()}"
        try:
            _faiss().write_index(self._faiss_index, faiss_path + tag)
            _fsynced_replace(faiss_path + tag, faiss_path)
            with open(labels_path + tag, "wb") as f:
                np.save(f, self._label_of_row)
            _fsynced_replace(labels_path + tag, labels_path)
        except BaseException:
            for tmp in (faiss_path + tag, labels_path + tag):
                with contextlib.suppress(OSError):
                    os.remove(tmp)
            raise
        fsync_folder(folder)
        self._write_meta(folder, generation, {p: [os.path.getsize(p), _crc_of(p)] for p in (faiss_path, labels_path)})

    def _write_meta(self, folder, generation, files):
        """Writes index-<generation>.json (atomically): the setting and the `files` {path: [size, CRC-32]}."""
        meta_path = _file_names(folder, generation)[2]
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "kind": self.built,
            "requested": self.kind,
            "generation": generation,
            "rows": len(self._label_of_row),
            "labels": self._labels,
            "setting": self.setting,
            "recall_at_10": self.recall,
            "calibration": CALIBRATION,
            "calibrated_rows": self.calibrated_rows,
            "trained_rows": self.trained_rows,
            "build_s": self.build_s,
            "files": {os.path.basename(p): v for p, v in files.items()},
        }
        write_atomically(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def open(self, folder, generation, vectors):
        """At the store's open, before its log replays: loads the index saved with snapshot
        `generation` over `vectors`, or builds (and saves) it when due; a damaged file is rebuilt."""
        for stale in glob.glob(os.path.join(folder, ".index-*.tmp-*")) + glob.glob(
            os.path.join(folder, "index-*.tmp-*")
        ):
            os.remove(stale)
        meta_path = _file_names(folder, generation)[2]
        _remove_index_files(folder, keep=generation)
        if self.kind is None:
            self.kind = _requested_kind(meta_path)
        due = self.due_kind(len(vectors))
        if due is not None and os.path.isfile(meta_path):
            problem = self._load(folder, generation, len(vectors))
            if problem is None and self.built == due:
                if self.setting is None:  # measured on other queries when saved: measured again, saved
                    self.calibrate(vectors)
                    with open(meta_path) as f:
                        self._write_meta(folder, generation, json.load(f)["files"])
                return
            if problem:
                logger.warning("Gallery store %s: %s; rebuilding the index from the snapshot.", folder, problem)
        self._clear()
        if due is not None:
            self._adopt(self._fresh(due, vectors))
            self._write(folder, generation)

    def _load(self, folder, generation, rows):
        """Installs the saved index; returns None, or why it cannot be used (the caller rebuilds)."""
        faiss_path, labels_path, meta_path = _file_names(folder, generation)
        try:
            with open(meta_path) as f:
                meta = json.load(f)
            if meta.get("format") != FORMAT or meta.get("version") != VERSION or meta.get("generation") != generation:
                return f"{meta_path} is not a version-{VERSION} index of generation {generation}"
            for path in (faiss_path, labels_path):
                size, crc = meta["files"][os.path.basename(path)]
                if not os.path.isfile(path) or os.path.getsize(path) != size or _crc_of(path) != crc:
                    return (
                        f"{path} is missing or damaged (its size or CRC-32 differs from {os.path.basename(meta_path)})"
                    )
            label_of_row = np.load(labels_path, allow_pickle=False)
            if len(label_of_row) != rows or meta["rows"] != rows:
                return f"{labels_path} maps {len(label_of_row)} rows; the snapshot holds {rows}"
            index = _faiss().read_index(faiss_path)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            return f"the index files of generation {generation} cannot be read ({type(e).__name__}: {e})"
        if index.d != self.dim:
            return f"{faiss_path} is {index.d}-d; the store is {self.dim}-d"
        state = {"built": meta["kind"], "faiss_index": index, "label_of_row": label_of_row}
        state.update(trained_rows=meta.get("trained_rows", 0), build_s=meta.get("build_s"))
        self._install(state, meta["setting"], meta["recall_at_10"], meta.get("calibrated_rows"))
        if meta.get("calibration") != CALIBRATION:
            self.setting = None  # measured on other queries (the gallery's own rows): `open` measures it again
        return None

    def stats(self):
        """The index part of the store's `stats()`."""
        out = {"index": self.kind, "index_built": self.built or "flat"}
        if self.built is not None:
            out.update(self.setting or {})
            out.update(
                index_recall_at_10=self.recall,
                index_calibration=CALIBRATION,
                index_calibrated_rows=self.calibrated_rows,
                index_labels=self._labels,
                index_tombstones=self._tombstones,
                index_build_s=self.build_s,
            )
        return out


def _first_reaching(measure, steps, plateau=False, best=None):
    """(setting, recall) of the first of `steps` whose `measure` reaches TARGET_RECALL, else of the last;
    with `plateau`, of the step before one that gains less than IVF_PLATEAU over it (`best`: the step
    before the first)."""
    for setting in steps:
        recall = measure(setting)
        if plateau and best and recall < best[1] + IVF_PLATEAU:
            return best
        best = setting, recall
        if recall >= TARGET_RECALL:
            break
    return best


def _rescored(queries, rows, vectors, k):
    """The top-k of candidate `rows` [m, c] (−1: none) by the exact inner product with `vectors`, the
    candidates of a block of queries gathered at a time (RESCORE_BYTES)."""
    block = max(1, RESCORE_BYTES // max(1, rows.shape[1] * vectors.shape[1] * 4))
    if len(rows) > block:
        return np.concatenate(
            [_rescored(queries[i : i + block], rows[i : i + block], vectors, k) for i in range(0, len(rows), block)]
        )
    safe = np.maximum(rows, 0)
    ip = np.einsum("md,mcd->mc", queries, vectors[safe])
    ip[rows < 0] = -np.inf
    k = min(k, rows.shape[1])
    top = np.argpartition(-ip, k - 1, axis=1)[:, :k] if k < rows.shape[1] else np.argsort(-ip, axis=1)
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(ip, top, axis=1), axis=1, kind="stable"), axis=1)
    out = np.take_along_axis(rows, top, axis=1)
    out[~np.isfinite(np.take_along_axis(ip, top, axis=1))] = -1
    return out


def calibration_queries(vectors, count=CALIBRATION_QUERIES, mix=CALIBRATION_MIX, seed=1):
    """`count` unit queries that are not rows of `vectors` (unit rows): a random row moved `mix` of the way
    towards another random row, then normalised. Off the gallery's near-duplicates and between its
    people, they are harder for the index than new views of enrolled people (benchmarks/ann_index.py,
    case `calibration`: at 300 k real-model rows, efSearch 32 gave 0.978 on them, 0.992 on the model's
    real queries, 1.0 on the gallery's own rows)."""
    rng = np.random.default_rng(seed)
    a = np.sort(rng.choice(len(vectors), min(len(vectors), count), replace=False))
    b = (a + rng.integers(1, max(len(vectors), 2), len(a))) % len(vectors)  # another row than a's
    q = (1 - mix) * np.asarray(vectors[a], np.float32) + mix * np.asarray(vectors[b], np.float32)
    return np.ascontiguousarray(q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12), np.float32)


def recall_at(found, truth):
    """Mean recall of `found` rows [m, k'] (−1: none) against the exact top-k `truth` rows [m, k]."""
    k = truth.shape[1]
    return float(np.mean([len(set(t.tolist()) & set(f[f >= 0].tolist())) / k for f, t in zip(found, truth)]))


def _requested_kind(meta_path):
    """The kind the saved index at `meta_path` was asked for ("auto" when none is saved or readable)."""
    try:
        with open(meta_path) as f:
            kind = json.load(f).get("requested")
    except (OSError, ValueError, AttributeError):
        return "auto"
    return kind if kind in KINDS else "auto"


def _remove_index_files(folder, keep):
    for path in glob.glob(os.path.join(folder, "index-*")):
        name = os.path.basename(path)
        if keep is None or not name.startswith(f"index-{keep:08d}."):
            os.remove(path)

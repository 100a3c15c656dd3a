"""Index folders: a gallery built once into a faiss index; top-k queries, camera filters, re-ranking.

The folder behind `sal-search index` / `query --index_dir`; a growing gallery is a store (`open_store`).

Index kinds (`GalleryIndex.create` / `--index`):

* `flat` (default): exact inner product, `IndexFlatIP`; a batch of queries is one BLAS matrix
  product against the gallery.
* `ivf`: approximate, for galleries past a million: `nlist` k-means cells (`IVF`), of which
  `nprobe` are scanned per query with 4-bit product-quantised codes (`PQ<m>x4fs`, faiss's SIMD
  "fast scan", m = dim / 2 up to 256-d, dim / 4 above: `pq_subquantizers`), and the k·K_FACTOR best candidates
  re-scored exactly against the stored vectors (`RFlat`), so reported distances are exact.
  Scanning codes instead of float vectors is what makes it faster than `flat` at all: `flat`
  reads the gallery once per batch of queries, an inverted-file scan reads its cells once per query.
* `ivf_flat`: `IndexIVFFlat` (cells scanned as float vectors), for comparison.

Defaults (chosen with `benchmarks/gallery_store.py` on a trained tiny model's embeddings and the same
lifted to 1024-d; the recall and speed figures are in BUILD.md): real embeddings have near-duplicate
neighbours (crops of one tracklet) that coarse codes cannot tell apart, so the codes are fine (m = dim / 2
up to 256-d, dim / 4 above) and k·64 candidates are re-scored; `nprobe` matters far less than the
codes. Below `EXACT_BELOW` (rows × dim: 256 k rows at
128-d, 32 k at 1024-d) one exact BLAS product per batch is as fast as an inverted-file scan, so
`build` makes a `flat` index for `ivf` / `ivf_flat` unless `nlist` is given (`index.json` keeps
the requested kind).

Why faiss (`faiss-cpu`): the exact BLAS search, the inverted-file indexes and their codes, and a
file format for all of them in one library (`benchmarks/embed_search.py` measures them against
numpy). The faiss-cpu 1.15 wheel only uses BLAS for exact search from 128,000 queries at once;
`use_blas_for_batches` (called by `GalleryIndex.search`, not at import) sets faiss's
long-standing 20.

Filters. `search(..., keep=mask)` searches only the rows where the boolean mask is true, inside
faiss (`IDSelectorBitmap` in the search parameters of every kind), so k results come back when
k rows pass; `search_hits` builds the mask from the store-like filters (`exclude_camera`, `cameras`,
on `user_cameras`: the cameras as the file names number them) and answers `Hit`s, as a store does.

Distances. Embeddings are unit vectors, so the inner product `ip` is the cosine and the index
ranks by it; results are reported as distances in one of `sal_tf.evaluation.distance.DISTANCES`:
`euclidean` (the default, as evaluation) sqrt(max(2 − 2·ip, 0)), or `cosine` clip(1 − ip, 0, 2)
(`to_distance`). Both order the gallery the same way. Re-ranking
(`sal_tf.evaluation.re_rank_features`, k1=20, k2=6, λ=0.3) reports its re-ranked distances.

An index folder holds `index.faiss`, `gallery.npz` (paths, and pids / camids when known) and
`index.json` (kind, size, dimension, distance, nlist / nprobe, the embeddings' source).
"""

import datetime
import json
import os

import faiss
import numpy as np

from sal_tf.evaluation.distance import check_distance, normalise, to_distance
from sal_tf.gallery.hits import Hit
from sal_tf.utils import write_json

# Exact search of more queries than this uses BLAS (sgemm) instead of faiss's per-query loop. The
# faiss-cpu 1.15 wheel ships 128000, so a batch of 100 queries ran the loop (~15x slower on 2 cores).
BLAS_THRESHOLD = 20

INDEX_FILE = "index.faiss"
GALLERY_FILE = "gallery.npz"
META_FILE = "index.json"
INDEX_KINDS = ("flat", "ivf", "ivf_flat")
DEFAULT_NPROBE = 64
K_FACTOR = 64  # ivf: candidates re-scored exactly per result (k·64)
EXACT_BELOW = 1 << 25  # rows × dim under which `build` answers ivf kinds with an exact flat index
ADD_CHUNK = 1 << 16  # rows normalised and added at a time (bounds the temporary copy)
MAX_RERANK_ITEMS = 20_000  # queries + gallery; re-ranking holds O(N·k1) lists and a q×g matrix


def use_blas_for_batches():
    """Lowers faiss's BLAS threshold to `BLAS_THRESHOLD` queries (a process-wide faiss setting; idempotent)."""
    if faiss.cvar.distance_compute_blas_threshold > BLAS_THRESHOLD:
        faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD


def default_nlist(count):
    """IVF cells for `count` vectors: about sqrt(count), at least 39 training points per cell."""
    return int(max(1, min(round(np.sqrt(count)), count // 39)))


def pq_subquantizers(dim):
    """PQ sub-vectors of the `ivf` index (4 bits each): the largest divisor of `dim` up to dim / 2 for
    widths up to 256, dim / 4 above (64 for 128-d: 32 bytes a vector; 256 for 1024-d: 128 bytes)."""
    most = dim // 2 if dim <= 256 else dim // 4
    return max(m for m in range(1, max(1, most) + 1) if dim % m == 0)


def factory_string(kind, dim, nlist):
    """The faiss `index_factory` description of an index kind (module docstring)."""
    if kind == "flat":
        return "Flat"
    if kind == "ivf_flat":
        return f"IVF{nlist},Flat"
    return f"IVF{nlist},PQ{pq_subquantizers(dim)}x4fs,RFlat"


def _empty_faiss(dim, kind, train, nlist, nprobe, seed):
    """An empty flat index, or an IVF index trained on the unit vectors `train` [n, dim]."""
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    nlist = int(nlist or default_nlist(len(train)))
    if not 1 <= nlist <= len(train):
        raise ValueError(f"--nlist must be in [1, {len(train)}] (the training vectors). Received: {nlist}")
    index = faiss.index_factory(dim, factory_string(kind, dim, nlist), faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = int(seed)
    index.train(train)
    ivf.nprobe = int(min(nprobe or DEFAULT_NPROBE, nlist))
    if kind == "ivf":
        index.k_factor = K_FACTOR
    return index


def _flat_part(index):
    """The `IndexFlat` holding the float vectors: the index itself (flat) or its refine stage (ivf)."""
    return faiss.downcast_index(index.refine_index) if hasattr(index, "refine_index") else index


class GalleryIndex:
    """A faiss index of gallery embeddings with their paths (and ids).

    Attributes:
        index: the faiss index (inner product on unit vectors).
        paths: list of str, row i of the index.
        pids, camids: int64 [N] or None.
        info: dict written to `index.json` (kind, size, dim, distance, nlist, nprobe, source, ...).
    """

    def __init__(self, index, paths, pids=None, camids=None, info=None):
        if index.ntotal != len(paths):
            raise ValueError(f"The index holds {index.ntotal} vectors but {len(paths)} paths were given.")
        self.index, self.paths = index, [str(p) for p in paths]
        self.pids = None if pids is None else np.asarray(pids, np.int64)
        self.camids = None if camids is None else np.asarray(camids, np.int64)
        self.info = dict(info or {})

    def __len__(self):
        return int(self.index.ntotal)

    @property
    def distance(self):
        return self.info.get("distance", "euclidean")

    @classmethod
    def create(cls, dim, kind="flat", train=None, nlist=None, nprobe=None, seed=0, capacity=None, **info):
        """An empty index of `dim`-d vectors; fill it with `add`.

        Args:
            kind: "flat" (exact), "ivf" or "ivf_flat" (approximate; need `train`): module docstring.
            train: IVF only: vectors [n, dim] to learn the `nlist` cells (and PQ codes) from
                (normalised here), e.g. a random sample of the gallery of at least 39·nlist rows.
            nlist: IVF cells (default `default_nlist(len(train))`); nprobe: cells scanned per
                query (default 64).
            capacity: flat / ivf: the number of vectors to come; their storage is allocated once
                (otherwise each `add` may grow it by copying, ~1.3x the index at the peak).
            **info: `distance` ("euclidean", the default, or "cosine"), `source`, ... (`index.json`).
        """
        if kind not in INDEX_KINDS:
            raise ValueError(f"--index must be one of {INDEX_KINDS}. Received: {kind!r}")
        check_distance(info.setdefault("distance", "euclidean"))
        if kind != "flat" and (train is None or len(train) == 0):
            raise ValueError("An IVF index needs training vectors (a sample of the gallery).")
        train = None if train is None else normalise(train, "train")
        index = _empty_faiss(int(dim), kind, train, nlist, nprobe, seed)
        if capacity and kind != "ivf_flat":
            flat = _flat_part(index)
            flat.codes.resize(int(capacity) * flat.code_size)  # std::vector: the capacity stays
            flat.codes.resize(0)
        info.update(kind=kind, dim=int(dim), faiss=faiss.__version__)
        if kind != "flat":
            ivf = faiss.extract_index_ivf(index)
            info.update(nlist=int(ivf.nlist), nprobe=int(ivf.nprobe), factory=factory_string(kind, dim, ivf.nlist))
            if kind == "ivf":
                info["k_factor"] = K_FACTOR
        return cls(index, [], None, None, info)

    def add(self, embeddings, paths, pids=None, camids=None):
        """Adds gallery rows [n, dim] (normalised here, `ADD_CHUNK` rows at a time) with their paths / ids."""
        if len(embeddings) != len(paths):
            raise ValueError(f"{len(embeddings)} embeddings but {len(paths)} paths.")
        if len(self) and (pids is None) != (self.pids is None):
            raise ValueError("Give pids / camids for every part of the gallery or for none.")
        for s in range(0, len(embeddings), ADD_CHUNK):
            chunk = normalise(embeddings[s : s + ADD_CHUNK])
            if chunk.shape[1] != self.index.d:
                raise ValueError(f"Embeddings are {chunk.shape[1]}-d but the index holds {self.index.d}-d vectors.")
            self.index.add(chunk)
        self.paths.extend(str(p) for p in paths)
        if pids is not None:
            new = np.asarray(pids, np.int64), np.asarray(camids, np.int64)
            old = (self.pids, self.camids) if self.pids is not None else (new[0][:0], new[1][:0])
            self.pids, self.camids = np.concatenate([old[0], new[0]]), np.concatenate([old[1], new[1]])
        self.info["size"] = len(self)

    @classmethod
    def build(cls, embeddings, paths, pids=None, camids=None, kind="flat", nlist=None, nprobe=None, seed=0, **info):
        """`create` + `add` of a whole gallery [N, D]; an IVF index trains on min(N, 64·nlist) random rows.

        `ivf` / `ivf_flat` without `nlist` below `EXACT_BELOW` rows × dim build an exact `flat`
        index (as fast there; `info["requested"]` keeps the kind asked for).
        """
        if len(embeddings) == 0:
            raise ValueError("The gallery is empty: nothing to index.")
        if np.ndim(embeddings) != 2:
            raise ValueError(f"`embeddings` must be a [count, dim] matrix. Received shape {np.shape(embeddings)}")
        if kind in INDEX_KINDS and kind != "flat" and nlist is None and np.size(embeddings) < EXACT_BELOW:
            info["requested"], kind = kind, "flat"
        train = None
        if kind != "flat":
            nlist = int(nlist or default_nlist(len(embeddings)))  # of the gallery, not of the training sample
            count = 64 * nlist
            rows = np.arange(len(embeddings))
            if len(rows) > count:
                rows = np.sort(np.random.default_rng(seed).choice(len(rows), count, replace=False))
            train = np.asarray(embeddings)[rows]
        index = cls.create(np.shape(embeddings)[1], kind, train, nlist, nprobe, seed, len(embeddings), **info)
        index.add(embeddings, paths, pids, camids)
        return index

    def save(self, folder, overwrite=False):
        """Writes `index.faiss`, `gallery.npz`, `index.json` into `folder` (refuses to replace one)."""
        if os.path.exists(os.path.join(folder, META_FILE)) and not overwrite:
            raise FileExistsError(f"--index_dir {folder!r} already holds an index; pass --overwrite to replace it.")
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{INDEX_FILE}.tmp-{os.getpid()}")
        faiss.write_index(self.index, tmp)
        os.replace(tmp, os.path.join(folder, INDEX_FILE))
        arrays = {"paths": np.asarray(self.paths, dtype=str)}
        if self.pids is not None:
            arrays.update(pids=self.pids, camids=self.camids)
        tmp = os.path.join(folder, f".{GALLERY_FILE}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, os.path.join(folder, GALLERY_FILE))
        created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        write_json(os.path.join(folder, META_FILE), {**self.info, "created": created})

    @classmethod
    def load(cls, folder):
        """The `GalleryIndex` saved in `folder`."""
        missing = [f for f in (INDEX_FILE, GALLERY_FILE, META_FILE) if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise FileNotFoundError(
                f"--index_dir {folder!r} lacks {missing}; expected a folder written by the search command's `index`."
            )
        with open(os.path.join(folder, META_FILE)) as f:
            info = json.load(f)
        index = faiss.read_index(os.path.join(folder, INDEX_FILE))
        if info.get("kind") == "ivf":
            index.k_factor = int(info.get("k_factor", 10))  # indexes written before k_factor was recorded used 10
        with np.load(os.path.join(folder, GALLERY_FILE), allow_pickle=False) as g:
            pids, camids = (g["pids"], g["camids"]) if "pids" in g else (None, None)
            return cls(index, g["paths"], pids, camids, info)

    def search(self, queries, k=10, nprobe=None, keep=None):
        """Top-k gallery rows of each query: (float32 [nq, k'] distances ascending, int64 [nq, k'] rows).

        k' = min(k, gallery size). `nprobe` overrides the IVF cells scanned (ignored for flat).
        `keep`: bool [N], search only those rows (inside faiss); where fewer than k' rows pass,
        the missing results are row -1 at distance inf.
        """
        q = normalise(queries, "queries")
        if q.shape[1] != self.index.d:
            raise ValueError(f"Query embeddings are {q.shape[1]}-d but the index holds {self.index.d}-d vectors.")
        use_blas_for_batches()
        kind = self.info.get("kind", "flat")
        ivf = faiss.extract_index_ivf(self.index) if kind != "flat" else None
        if nprobe is not None and ivf is not None:
            ivf.nprobe = int(nprobe)
        k = int(min(k, len(self)))
        if keep is None:
            ip, rows = self.index.search(q, k)
        else:
            keep = np.asarray(keep, bool)
            if keep.shape != (len(self),):
                raise ValueError(f"`keep` must be a bool mask of the {len(self)} gallery rows. Received {keep.shape}")
            bits = np.packbits(keep, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self), faiss.swig_ptr(bits))
            if kind == "flat":
                params = faiss.SearchParameters(sel=selector)
            elif kind == "ivf":
                base = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
                params = faiss.IndexRefineSearchParameters(k_factor=self.index.k_factor, base_index_params=base)
                params.sel = selector
            else:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
            ip, rows = self.index.search(q, k, params=params)
        missing = rows < 0  # fewer rows passed `keep` than k; faiss fills in -1 at ip -FLT_MAX
        dist = to_distance(np.where(missing, 0.0, ip), self.distance)
        dist[missing] = np.inf
        return dist, rows.astype(np.int64)

    def user_cameras(self):
        """int64 [N] cameras as a person numbers them (`sources.camera_number`; -1 unknown), or None."""
        if self.camids is None:
            return None
        from sal_tf.inference.sources import camera_number

        return np.array([camera_number(p, c) for p, c in zip(self.paths, self.camids)], np.int64)

    def vectors(self):
        """The indexed unit vectors, float32 [N, D] (for re-ranking)."""
        if self.info.get("kind") == "ivf_flat":
            faiss.extract_index_ivf(self.index).make_direct_map()
            return self.index.reconstruct_n(0, len(self))
        return _flat_part(self.index).reconstruct_n(0, len(self))

    def search_reranked(self, queries, k=10, max_items=MAX_RERANK_ITEMS, **rerank_args):
        """Top-k by k-reciprocal re-ranked distance over the whole gallery (same outputs as `search`).

        Raises:
            ValueError: queries + gallery exceed `max_items` (re-ranking would not fit; use `search`).
        """
        from sal_tf.evaluation import re_rank_features

        q = normalise(queries, "queries")
        if len(q) + len(self) > max_items:
            raise ValueError(
                f"Re-ranking {len(q)} queries against {len(self)} gallery images exceeds --max_rerank={max_items} "
                "items (it holds a queries x gallery matrix and neighbour lists of all of them); search "
                "without --rerank, or raise --max_rerank."
            )
        dist = re_rank_features(q, self.vectors(), metric=self.distance, **rerank_args)
        rows = np.argsort(dist, axis=1, kind="stable")[:, : min(k, len(self))]
        return np.take_along_axis(dist, rows, axis=1).astype(np.float32), rows.astype(np.int64)

    def hits(self, rows, distances):
        """The `Hit`s of `search`'s rows and distances, one list per query; rows -1 (fewer matches than k)
        are left out. An item's id is its path; its camera is the number a person reads
        (`sources.camera_number`: `c1` → 1) and its person id the gallery's pid, where the index has them.
        """
        cameras = self.user_cameras()
        out = []
        for row, dist in zip(rows, distances):
            found = []
            for j, d in zip(row, dist):
                if j < 0:
                    continue
                camera = None if cameras is None or cameras[j] < 0 else int(cameras[j])
                person = None if self.pids is None else int(self.pids[j])
                found.append(Hit(self.paths[j], float(d), camera, None, self.paths[j], person))
            out.append(found)
        return out

    def search_hits(self, queries, k=10, exclude_camera=None, cameras=None, nprobe=None):
        """Top-k `Hit`s of each query, as a store's `search`: `exclude_camera` leaves that camera out,
        `cameras` keeps only those (inside the search, `keep`).

        Raises:
            ValueError: a camera filter on an index whose gallery has no cameras.
        """
        keep = None
        if exclude_camera is not None or cameras is not None:
            gallery = self.user_cameras()
            if gallery is None:
                raise ValueError(
                    "Camera filters need the gallery's cameras, and this index has none (its file names did not "
                    "all parse); add the gallery to a --store with --camera, or use a CSV."
                )
            keep = np.ones(len(self), bool) if cameras is None else np.isin(gallery, list(cameras))
            if exclude_camera is not None:
                keep &= gallery != exclude_camera
        return self.hits(*reversed(self.search(queries, k, nprobe, keep=keep)))

"""The Milvus gallery store, through `pymilvus.MilvusClient`: Milvus Lite (a `*.db` path) or a server.

The same code serves both: a local `*.db` path makes pymilvus start the embedded Milvus Lite in
this process (a folder of that name holds its data); an `http(s)://host:19530` URI talks to a
Milvus standalone or cluster.

One collection (default `sal_gallery`) per store:

    id          VARCHAR(1024) primary key
    embedding   FLOAT_VECTOR(dim), index FLAT, metric IP (exact inner product of unit vectors)
    camera      INT64, nullable        timestamp  DOUBLE, nullable
    path        VARCHAR(4096), nullable   person_id  INT64, nullable

"Unknown" is a null (Milvus 2.5+ and Milvus Lite support nullable scalar fields), so no sentinel
value can collide with a real camera or time. The store's distance convention, and the model that
made its embeddings once known (`record_model`), are kept in the collection's properties
(`sal_tf_gallery`: JSON). The collection is created with consistency level Strong, and
every request asks for it, so an acknowledged add is searchable at once.

Filters are Milvus boolean expressions on the scalar fields (`camera != 3`, `camera in [1, 2]`,
`timestamp >= t0 and timestamp <= t1`) evaluated inside Milvus; a comparison with a null is false,
so an item of unknown camera / time never passes a camera / time filter, as in the embedded store.
Milvus ranks by float32 inner product; the hits' distances are recomputed from their returned
vectors in float64 (`base.exact_distances`), exactly as the embedded store does.

Durability is Milvus's: Milvus Lite writes its write-ahead log before it answers (it survives the
process being killed; `sync_mode` decides fsync), a server persists through its own log broker.
"""

import json
import logging
import os
import threading
import urllib.parse

import numpy as np

from sal_tf.evaluation.distance import check_distance
from sal_tf.gallery import base, milvus_index
from sal_tf.gallery.hits import Hit

DEFAULT_COLLECTION = "sal_gallery"
FIELDS = ("camera", "timestamp", "path", "person_id")
DESCRIPTION_KEY = "sal_tf_gallery"
UPSERT_FLOATS = 1 << 21  # floats per upsert request (8 MiB of vectors; gRPC caps a message at 64 MiB)
LEGACY_MODEL_SUFFIX = ".model.json"  # beside a Milvus Lite file: where `sal-search add` noted the model before
ID_BATCH = 4096  # ids per `ids()` query page
LITE_FLUSH_ROWS = 2048  # Milvus Lite: rows left in its memtable before a flush (it searches them ~9x slower)

logger = logging.getLogger(__name__)
_lite_users = {}  # Milvus Lite data folder → open stores of this process using its in-process server
_lite_lock = threading.Lock()


def is_milvus_location(location):
    text = os.fspath(location)
    return text.endswith(".db") or urllib.parse.urlparse(text).scheme in ("http", "https", "tcp")


def _import_pymilvus():
    try:
        import pymilvus
    except ImportError as e:
        raise ImportError(
            "The Milvus gallery store needs pymilvus and milvus-lite: pip install 'sal-tf[serve]' "
            "(or -r requirements-serve.txt)."
        ) from e
    return pymilvus


def _float_literal(x):
    text = repr(float(x))
    return text if ("." in text or "e" in text) else text + ".0"


def string_literal(text):
    """`text` as a Milvus expression string literal (ids hold no control characters: `base.check_id`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expression(exclude_camera=None, cameras=None, time_range=None):
    """The Milvus boolean expression of the search filters ("" for none); arguments already validated."""
    parts = []
    if exclude_camera is not None:
        parts.append(f"camera != {int(exclude_camera)}")
    if cameras is not None:
        parts.append(f"camera in [{', '.join(str(int(c)) for c in cameras)}]")
    if time_range is not None:
        parts.append(f"timestamp >= {_float_literal(time_range[0])} and timestamp <= {_float_literal(time_range[1])}")
    return " and ".join(f"({p})" for p in parts)


def _stored_meta(info):
    """The store's settings kept in a collection's properties, or None (not a sal_tf gallery)."""
    text = (info.get("properties") or {}).get(DESCRIPTION_KEY)
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


class MilvusStore(base.GalleryStore):
    """A gallery in a Milvus collection (module docstring). Open it with `open_store` or `MilvusStore.open`."""

    kind = "milvus"

    def __init__(self, client, location, collection, dim, distance, lite_path=None):
        self._client = client
        self.location = location
        self.collection = collection
        self.dim = dim
        self.distance = distance
        self._lite_path = lite_path
        self._lock = threading.Lock()
        self._closed = False
        self._unflushed = 0
        self._meta = {}
        self._index = ("FLAT", {}, {})  # Milvus type, build and search parameters (milvus_index.py)

    @classmethod
    def open(
        cls,
        location,
        dim=None,
        distance="euclidean",
        collection=DEFAULT_COLLECTION,
        token=None,
        db_name=None,
        index="auto",
        index_params=None,
        search_params=None,
    ):
        """Opens (or, given `dim`, creates) the store's collection at `location`.

        Args:
            location: a `*.db` path (Milvus Lite) or `http(s)://host:port` (a Milvus server).
            dim: embedding width: creates the collection when missing; must match when present.
            distance: a new store's convention; an existing one keeps its own.
            collection: the collection's name; token / db_name: a server's credentials and database.
            index, index_params, search_params: the vector index (`sal_tf/gallery/milvus_index.py`).
        """
        pymilvus = _import_pymilvus()
        if dim is not None:
            dim = base.check_dim(dim)
        check_distance(distance)
        location = os.fspath(location)
        lite = location.endswith(".db") and "://" not in location
        milvus_index.spec(index, dim or 1, lite, index_params, search_params, current="FLAT")  # refused early
        lite_path = None
        if location.endswith(".db") and "://" not in location:
            lite_path = os.path.abspath(os.path.expanduser(location))
            if not os.path.exists(lite_path) and dim is None:
                raise FileNotFoundError(
                    f"No Milvus Lite store at {lite_path!r}; give the embedding width (dim) to create one."
                )
            os.makedirs(os.path.dirname(lite_path), exist_ok=True)
            location = lite_path
            cls._check_lite_lock(lite_path)
        with _lite_lock:
            try:
                client = pymilvus.MilvusClient(uri=location, token=token or "", db_name=db_name or "")
            except pymilvus.MilvusException as e:
                raise ConnectionError(f"Cannot open the Milvus store {location!r}: {e}") from None
            if lite_path:
                _lite_users[lite_path] = _lite_users.get(lite_path, 0) + 1
        store = cls(client, location, collection, dim or 0, distance, lite_path)
        try:
            store._open_collection(
                dim, distance, dict(index=index, index_params=index_params, search_params=search_params)
            )
        except BaseException:
            store.close()
            raise
        return store

    @staticmethod
    def _check_lite_lock(path):
        """StoreLockedError when another process has Milvus Lite open on `path` (it holds `LOCK` there)."""
        import fcntl

        lock = os.path.join(path, "LOCK")
        if not os.path.isfile(lock) or path in _lite_users:
            return
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            raise base.StoreLockedError(
                f"Milvus Lite store {path!r} is open in another process; Milvus Lite serves one process. "
                "Close it there, or run a Milvus server and use its http:// URI to share a gallery."
            ) from None
        finally:
            os.close(fd)

    def _open_collection(self, dim, distance, index_options):
        from pymilvus import DataType, MilvusClient

        c = self._client
        if c.has_collection(self.collection):
            info = c.describe_collection(self.collection)
            fields = {f["name"]: f for f in info["fields"]}
            meta = _stored_meta(info)
            if meta is None or "embedding" not in fields:
                raise ValueError(
                    f"Collection {self.collection!r} at {self.location!r} was not made by sal_tf.gallery "
                    "(pass another `collection`)."
                )
            self.dim = int(fields["embedding"]["params"]["dim"])
            self.distance = meta.get("distance", "euclidean")
            self._meta = meta
            if dim is not None and dim != self.dim:
                raise ValueError(
                    f"Gallery store {self.location!r} holds {self.dim}-d embeddings; `dim`={dim} was given."
                )
            c.load_collection(self.collection)
            lite = self._lite_path is not None
            self._index = milvus_index.prepare(c, self.collection, self.dim, lite, True, **index_options)
            return
        if dim is None:
            raise FileNotFoundError(
                f"No gallery collection {self.collection!r} at {self.location!r}; give the embedding width (dim) "
                "to create one."
            )
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=base.MAX_ID_BYTES)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("camera", DataType.INT64, nullable=True)
        schema.add_field("timestamp", DataType.DOUBLE, nullable=True)
        schema.add_field("path", DataType.VARCHAR, max_length=base.MAX_PATH_BYTES, nullable=True)
        schema.add_field("person_id", DataType.INT64, nullable=True)
        self._index = milvus_index.prepare(c, self.collection, dim, self._lite_path is not None, False, **index_options)
        index = milvus_index.index_params(c, *self._index[:2])
        meta = json.dumps({"distance": distance, "version": 1})
        c.create_collection(
            self.collection,
            schema=schema,
            index_params=index,
            consistency_level="Strong",
            description=f"sal_tf.gallery store {meta}",
        )
        c.alter_collection_properties(self.collection, properties={DESCRIPTION_KEY: meta})
        c.load_collection(self.collection)
        self.dim, self.distance, self._meta = dim, distance, json.loads(meta)

    @property
    def model(self):
        """The model that made the embeddings (the collection's properties; an older side file), or None."""
        return base.recorded_model(self._meta, self._lite_path and self._lite_path + LEGACY_MODEL_SUFFIX)

    def record_model(self, model):
        """Records `model` in the collection's properties as the model that made the embeddings."""
        self._check_open()
        with self._lock:
            if model and model != self._meta.get("model"):
                meta = {**self._meta, "model": model}
                self._client.alter_collection_properties(
                    self.collection, properties={DESCRIPTION_KEY: json.dumps(meta)}
                )
                self._meta = meta

    def ids(self):
        self._check_open()
        count = self.count()
        if count <= base.MAX_K:  # one query (Milvus answers at most MAX_K rows; the iterator warns on Lite)
            rows = self._client.query(
                self.collection, filter="", output_fields=["id"], limit=max(count, 1), consistency_level="Strong"
            )
            return [row["id"] for row in rows]
        pages = self._client.query_iterator(
            self.collection, batch_size=ID_BATCH, filter="", output_fields=["id"], consistency_level="Strong"
        )
        out = []
        try:
            while page := pages.next():
                out.extend(row["id"] for row in page)
        finally:
            pages.close()
        return out

    def items_of_person(self, person_id):
        """See `GalleryStore.items_of_person`; at most `base.MAX_K` items (Milvus's largest query answer)."""
        person_id = base.check_person_id(person_id)
        self._check_open()
        rows = self._client.query(
            self.collection,
            filter=f"person_id == {person_id}",
            output_fields=["id", *FIELDS],
            limit=base.MAX_K,
            consistency_level="Strong",
        )
        return base.in_time_order([self._item(row, row["id"]) for row in rows])

    def _check_open(self):
        if self._closed:
            raise RuntimeError(f"Gallery store {self.location!r} is closed.")

    @staticmethod
    def _item(entity, item_id):
        return base.Item(item_id, *(entity.get(f) for f in FIELDS))

    def add(self, embeddings, items):
        self._check_open()
        vectors, items = base.check_batch(embeddings, items, self.dim)
        step = max(1, UPSERT_FLOATS // self.dim)
        for start in range(0, len(items), step):
            rows = [
                {
                    "id": item.id,
                    "embedding": vector,
                    "camera": item.camera,
                    "timestamp": item.timestamp,
                    "path": item.path,
                    "person_id": item.person_id,
                }
                for vector, item in zip(vectors[start : start + step], items[start : start + step])
            ]
            self._client.upsert(self.collection, rows)
        if self._lite_path:  # a server seals its own segments; Lite searches its memtable row by row
            with self._lock:
                self._unflushed += len(items)
                flush = self._unflushed >= LITE_FLUSH_ROWS
                self._unflushed = 0 if flush else self._unflushed
            if flush:
                self._client.flush(self.collection)
        return [item.id for item in items]

    def delete(self, id):
        self._check_open()
        base.check_id(id)
        with self._lock:
            if self.get(id) is None:
                return False
            self._client.delete(self.collection, filter=f"id == {string_literal(id)}")
        return True

    def get(self, id):
        self._check_open()
        base.check_id(id)
        # `ids=` would build the expression without escaping quotes or backslashes; ours escapes them
        rows = self._client.query(
            self.collection,
            filter=f"id == {string_literal(id)}",
            output_fields=["id", *FIELDS],
            consistency_level="Strong",
        )
        return self._item(rows[0], rows[0]["id"]) if rows else None

    def search(self, queries, k, exclude_camera=None, cameras=None, time_range=None):
        self._check_open()
        q, k, exclude_camera, cameras, time_range = base.check_search(
            queries, k, exclude_camera, cameras, time_range, self.dim
        )
        answers = self._client.search(
            self.collection,
            data=list(q),
            limit=k,
            filter=filter_expression(exclude_camera, cameras, time_range),
            output_fields=[*FIELDS, "embedding"],
            search_params={"metric_type": "IP", "params": self._index[2]},
            anns_field="embedding",
            consistency_level="Strong",
        )
        results = []
        for query, hits in zip(q, answers):
            if not len(hits):
                results.append([])
                continue
            vectors = np.asarray([h["entity"]["embedding"] for h in hits], np.float32)
            dist = base.exact_distances(query[None], vectors[None], self.distance)[0]
            order = np.argsort(dist, kind="stable")
            results.append([Hit.of(self._item(hits[j]["entity"], hits[j]["id"]), dist[j]) for j in order])
        return results

    def count(self):
        self._check_open()
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def stats(self):
        import pymilvus

        out = {
            "kind": self.kind,
            "count": self.count(),
            "dim": self.dim,
            "distance": self.distance,
            "location": self.location,
            "collection": self.collection,
            "server": "milvus-lite (in process)" if self._lite_path else "milvus server",
            "index": f"{self._index[0]}, metric IP" + (" (exact)" if self._index[0] == "FLAT" else ""),
            "index_params": self._index[1],
            "search_params": self._index[2],
            "consistency_level": "Strong",
            "pymilvus": pymilvus.__version__,
        }
        if self.model:
            out["model"] = self.model
        if self._lite_path:
            import milvus_lite

            out["milvus_lite"] = milvus_lite.__version__
        return out

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._client.close()
        finally:
            if self._lite_path:
                with _lite_lock:
                    left = _lite_users.get(self._lite_path, 1) - 1
                    if left > 0:
                        _lite_users[self._lite_path] = left
                    else:
                        _lite_users.pop(self._lite_path, None)
                        from milvus_lite.server_manager import server_manager_instance

                        server_manager_instance.release_server(self._lite_path)  # frees its LOCK

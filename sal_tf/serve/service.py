"""`GalleryService`: the search service's work, without HTTP: add, delete, search, crops, attention.

It joins an embedding source (`sal_tf/serve/embedding.py`), a gallery store
(`sal_tf.gallery.open_store`, thread-safe) and the crop folder (`sal_tf/serve/crops.py`). Adds and
deletes hold one write lock, so the crop files and the store change together and in request order;
searches and crop reads take no lock. Every refusal is a `ServiceError` naming the field.
"""

import dataclasses
import re
import threading
import time
import uuid

import numpy as np

from sal_tf.gallery import Item, open_store
from sal_tf.gallery.base import check_batch
from sal_tf.serve import images
from sal_tf.serve.batching import Coalescer
from sal_tf.serve.crops import CropFolder
from sal_tf.serve.embedding import open_embedding
from sal_tf.serve.errors import BadInput, NotFound, ServiceError

_BACKTICKED = re.compile(r"`([^`]+)`")
SEARCH_BATCH = 64  # concurrent queries answered by one store search (sal_tf/serve/batching.py)


@dataclasses.dataclass
class Upload:
    """One crop to add: encoded image bytes, where it came from in the request, and its `Item` fields."""

    image: bytes
    field: str
    id: str = None
    camera: int = None
    timestamp: float = None
    path: str = None
    person_id: int = None


def store_refusal(error, renames=None):
    """A store's ValueError as a 422 `ServiceError` naming the field (renamed to the API's name)."""
    message = str(error)
    match = _BACKTICKED.search(message)
    field = match.group(1) if match else None
    for old, new in (renames or {}).items():
        if field and field.startswith(old):
            field = new + field[len(old) :]
    return ServiceError(message.replace("`", ""), field, status=422)


def hit_json(hit):
    return {
        "id": hit.id,
        "distance": hit.distance,
        "camera": hit.camera,
        "timestamp": hit.timestamp,
        "path": hit.path,
        "person_id": hit.person_id,
    }


class GalleryService:
    """The service over `settings` (`ServeSettings`); `open` loads the model and the store."""

    def __init__(self, settings, embedding, store, crops):
        self.settings, self.embedding, self.store, self.crops = settings, embedding, store, crops
        self._write_lock = threading.Lock()
        self._searches = Coalescer(self._search_batch, SEARCH_BATCH)
        if store.dim != embedding.dim:
            raise ValueError(
                f"--store {settings.store!r} holds {store.dim}-d embeddings but the model gives {embedding.dim}-d."
            )
        self.recovered = crops.recover(self.in_store)

    @classmethod
    def open(cls, settings):
        embedding = open_embedding(settings)
        store = open_store(settings.store, dim=embedding.dim, distance=settings.distance)
        try:
            return cls(settings, embedding, store, CropFolder(settings.crops_dir()))
        except BaseException:
            store.close()
            raise

    def close(self):
        with self._write_lock:
            self.crops.close()
            self.store.close()

    def health(self):
        return {"status": "ok", "count": self.store.count(), "store": self.store.kind, "model": self.embedding.name}

    # --- gallery ---------------------------------------------------------------------------------

    def add(self, uploads):
        """Embeds and stores `uploads` (list of `Upload`); returns their ids once durable."""
        if len(uploads) > self.settings.max_items:
            raise BadInput("items", f"at most {self.settings.max_items} items per request (--max_items)", len(uploads))
        if not uploads:
            raise BadInput("items", "at least one item", "none")
        for u in uploads:
            images.check_image_bytes(u.image, u.field)
        ids = [u.id or uuid.uuid4().hex for u in uploads]
        metadata = [Item(i, u.camera, u.timestamp, u.path, u.person_id) for i, u in zip(ids, uploads)]
        embeddings = self.embedding.embed([u.image for u in uploads], [u.field for u in uploads])
        try:
            vectors, metadata = check_batch(embeddings, metadata, self.store.dim)
        except ValueError as e:
            raise store_refusal(e) from None
        kinds = [images.content_type(u.image) for u in uploads]
        with self._write_lock:
            record = self.crops.begin(ids, "add")
            try:
                self.crops.write(ids, [u.image for u in uploads], kinds)
                self.store.add(vectors, metadata)
            except BaseException:
                self.crops.settle(record, self.in_store)
                raise
            self.crops.end(record)
        return ids

    def in_store(self, item_id):
        return self.store.get(item_id) is not None

    def delete(self, item_id):
        """Removes an item and its crop; NotFound for an unknown id."""
        with self._write_lock:
            if self.store.get(item_id) is None:
                raise NotFound(f"no gallery item with id {item_id!r}", "id")
            record = self.crops.begin([item_id], "delete")
            try:
                self.store.delete(item_id)
            finally:
                self.crops.settle(record, self.in_store)

    def crop(self, item_id):
        """(bytes, content type) of an item's stored crop; NotFound for an unknown id."""
        found = self.crops.read(item_id) if self.store.get(item_id) is not None else None
        if found is None:
            raise NotFound(f"no gallery item with id {item_id!r}", "id")
        return found

    # --- search ----------------------------------------------------------------------------------

    def query_vector(self, image_b64=None, embedding=None):
        """The query as a [1, D] array, from an image or an embedding (exactly one)."""
        if (image_b64 is None) == (embedding is None):
            raise BadInput("image_b64", "exactly one of image_b64 (a query image) or embedding (numbers)")
        if image_b64 is not None:
            data = images.decode_base64(image_b64, "image_b64")
            return self.embedding.embed([data], ["image_b64"])
        vector = np.asarray(embedding, np.float64)
        if vector.shape != (self.store.dim,):
            raise BadInput("embedding", f"{self.store.dim} numbers (the gallery's width)", f"{vector.size} numbers")
        if not np.isfinite(vector).all() or not np.any(vector):
            raise BadInput("embedding", "finite numbers, not all zero")
        return vector[None]

    def search(self, query, k, exclude_camera=None, cameras=None, time_range=None):
        """JSON-ready hits of one query [1, D] (see `query_vector`), searched together with concurrent ones."""
        if k < 1 or k > self.settings.max_k:
            raise BadInput("k", f"an integer in 1..{self.settings.max_k} (--max_k)", k)
        if cameras is not None and not cameras:
            raise BadInput("cameras", "at least one camera (leave the field out for every camera)", "[]")
        filters = (exclude_camera, tuple(cameras) if cameras else None, tuple(time_range) if time_range else None)
        try:
            hits = self._searches.submit(filters, (query, k))
        except ValueError as e:
            raise store_refusal(e, {"queries": "embedding"}) from None
        return [hit_json(h) for h in hits]

    def _search_batch(self, filters, payloads):
        """One store search for queries with the same filters: [(query [1, D], k), ...] → their hits."""
        queries = np.concatenate([q for q, _ in payloads])
        hits = self.store.search(queries, max(k for _, k in payloads), *filters)
        return [row[:k] for row, (_, k) in zip(hits, payloads)]

    def timed_search(self, request):
        """`POST /v1/search` for a `SearchIn`: {"results", "took_ms"}."""
        start = time.perf_counter()
        query = self.query_vector(request.image_b64, request.embedding)
        range_ = tuple(request.time_range) if request.time_range is not None else None
        results = self.search(query, request.k, request.exclude_camera, request.cameras, range_)
        return {"results": results, "took_ms": (time.perf_counter() - start) * 1000.0}

    def attention_png(self, image_b64):
        data = images.decode_base64(image_b64, "image_b64")
        return self.embedding.attention_png(data, "image_b64")

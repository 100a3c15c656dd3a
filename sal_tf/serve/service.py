"""`GalleryService`: the search service's work, without HTTP: add, delete, search, crops, attention.

It joins an embedding source (`sal_tf/serve/embedding.py`), a gallery store
(`sal_tf.gallery.open_store`, thread-safe) and the crop database beside it
(`sal_tf.gallery.crops.CropFolder`). Plain values in (bytes, numbers, lists; never a request
body), `Hit`s and ids out. Adds and deletes hold one write lock, so the stored crops and the store
change together and in request order; searches and crop reads take no lock. Searches from worker
threads are batched (`batching.py`); a search by embedding that the store answers fast runs alone
on the caller's thread (`search_inline`, for the event loop: `inline.py`).

Every refusal is a `sal_tf.serve.failures` error naming the field; no HTTP status here
(`sal_tf/serve/errors.py` maps them). Each check lives in one layer: the request schema checks
types (`schemas.py`), this service checks its own settings (`--max_items`, `--max_k`,
`--max_image_pixels`) and the images, and the store checks the values it stores and the search
filters (ids, metadata ranges, `cameras`, `time_range`, the query's width), refusing with a
`ValueError` whose `field` this service passes on.
"""

import dataclasses
import threading
import uuid

import numpy as np

from sal_tf.gallery import Item, open_store
from sal_tf.gallery.base import check_batch, check_id, unit_rows
from sal_tf.gallery.crops import CropFolder
from sal_tf.serve import images, people
from sal_tf.serve.batching import Coalescer
from sal_tf.serve.embedding import open_embedding
from sal_tf.serve.failures import BadInput, InvalidValue, NotFound
from sal_tf.serve.inline import InlineGate

SEARCH_BATCH = 64  # concurrent queries answered by one store search (sal_tf/serve/batching.py)


@dataclasses.dataclass
class Upload:
    """One crop to add: encoded image bytes, where it came from in the request, and its gallery `Item`."""

    image: bytes
    field: str
    item: Item = dataclasses.field(default_factory=Item)


def store_refusal(error, renames=None, field=None):
    """A store's ValueError as an `InvalidValue` naming its `field` (renamed to the service's name; else `field`)."""
    message = str(error).replace("`", "")
    field = getattr(error, "field", None) or field
    for old, new in (renames or {}).items():
        if field and field.startswith(old):
            field, message = new + field[len(old) :], message.replace(old, new, 1)
    return InvalidValue(message, field)


@dataclasses.dataclass(frozen=True)
class Image:
    """A query image: encoded bytes, and the request field they came from (named in errors)."""

    data: bytes
    field: str


def filter_kind(filters):
    """Which of a search's filters (exclude_camera, cameras, time_range) are given: the key of its timings."""
    return tuple(f is not None for f in filters)


class GalleryService:
    """The service over `settings` (`ServeSettings`); `open` loads the model and the store."""

    def __init__(self, settings, embedding, store, crops, calibration=None, calibration_source="no calibration"):
        self.settings, self.embedding, self.store, self.crops = settings, embedding, store, crops
        self.calibration, self.calibration_source = calibration, calibration_source
        self._write_lock = threading.Lock()
        self._model_recorded = False
        self._searches = Coalescer(self._search_batch, SEARCH_BATCH)
        self._gate = InlineGate()  # the store's recent search times, per filter set
        if store.dim != embedding.dim:
            raise ValueError(
                f"--store {settings.store!r} holds {store.dim}-d embeddings but the model gives {embedding.dim}-d."
            )
        self.recovered = crops.clean(store.ids())

    @classmethod
    def open(cls, settings):
        calibration = people.open_calibration(settings)  # a bad --calibration fails before the model loads
        embedding = open_embedding(settings)
        store = open_store(settings.store, dim=embedding.dim, distance=settings.distance, index=settings.index)
        try:
            return cls(settings, embedding, store, CropFolder(settings.crops_dir()), *calibration)
        except BaseException:
            store.close()
            raise

    def close(self):
        with self._write_lock:
            self.crops.close()
            self.store.close()

    def health(self):
        return {"status": "ok", "count": self.store.count(), "store": self.store.kind, "model": self.embedding.name}

    def count(self):
        return self.store.count()

    def picture(self, data, field):
        return images.picture(data, field, self.settings.max_image_pixels)

    # --- gallery ---------------------------------------------------------------------------------

    def add(self, uploads, collection="items"):
        """Embeds and stores `uploads` (list of `Upload`, named `collection` in errors); returns their ids once durable.

        Under the write lock: the batch's crops in one durable transaction (`CropFolder.write`), then
        the store's add; if the store refuses, the batch's crops of ids it does not hold go (and a crash
        between the two leaves crops that `CropFolder.clean` drops at open; `sal_tf/gallery/crops.py`).
        So a concurrent delete never removes a crop of this add before its store entry, and two adds of
        one id write their crops and add their vectors in the same (lock) order: the crop kept is the
        one of the vector kept.
        """
        if not 1 <= len(uploads) <= self.settings.max_items:
            expected = f"1 to {self.settings.max_items} items per request (--max_items)"
            raise BadInput(collection, expected, len(uploads))
        pictures = [self.picture(u.image, u.field) for u in uploads]
        ids = [u.item.id or uuid.uuid4().hex for u in uploads]
        metadata = [dataclasses.replace(u.item, id=i) for i, u in zip(ids, uploads)]
        embeddings = self.embedding.embed(pictures)
        try:
            vectors, metadata = check_batch(embeddings, metadata, self.store.dim)
        except ValueError as e:
            raise store_refusal(e) from None
        with self._write_lock:
            self.crops.write(ids, [p.data for p in pictures], [p.content_type for p in pictures])
            try:
                self.store.add(vectors, metadata)
            except BaseException:
                self.crops.remove_unheld(ids, self.in_store)
                raise
            self.record_model()
        return ids

    def record_model(self):
        """Records in the store which model made its embeddings (`store.model`, read by `sal-search`), once."""
        if not self._model_recorded:
            if self.store.model is None:
                self.store.record_model(self.settings.model_source())
            self._model_recorded = True

    def in_store(self, item_id):
        return self.store.get(item_id) is not None

    def held(self, item_id):
        """Whether the store holds `item_id`; InvalidValue naming `id` for an id no store can hold."""
        try:
            check_id(item_id, "id")
        except ValueError as e:
            raise store_refusal(e, field="id") from None
        return self.in_store(item_id)

    def delete(self, item_id):
        """Removes an item and its crop; NotFound for an unknown id."""
        with self._write_lock:
            if not self.held(item_id):
                raise NotFound(f"no gallery item with id {item_id!r}", "id")
            try:
                self.store.delete(item_id)
            finally:
                self.crops.remove_unheld([item_id], self.in_store)

    def crop(self, item_id):
        """(bytes, content type) of an item's stored crop, else of its `path` under `--paths_root`; NotFound otherwise."""
        found = self.crops.read(item_id) if self.held(item_id) else None
        if found is None and self.settings.paths_root:
            item = self.store.get(item_id)
            found = people.file_under(item.path, self.settings.paths_root) if item is not None else None
        if found is None:
            raise NotFound(f"no gallery item with id {item_id!r}", "id")
        return found

    def journey(self, person_id):
        """The `Item`s of `person_id` in time order (a person's journey); NotFound when the store holds none."""
        try:
            items = self.store.items_of_person(person_id)
        except ValueError as e:
            raise store_refusal(e, {"person_id": "global_id"}) from None
        if not items:
            raise NotFound(f"no gallery item has person_id {person_id}", "global_id")
        return items

    # --- search ----------------------------------------------------------------------------------

    def query_vector(self, image=None, embedding=None):
        """The query as a unit [1, D] array, from an `Image` or an embedding (numbers): exactly one."""
        if (image is None) == (embedding is None):
            raise BadInput("image_b64", "exactly one of a query image (image_b64) or an embedding (numbers)")
        if image is not None:
            return self.embedding.embed([self.picture(image.data, image.field)])
        try:  # the store's own check, here so that one bad query never joins a batch
            return unit_rows(np.asarray(embedding, np.float64), self.store.dim, "queries")
        except ValueError as e:
            raise store_refusal(e, {"queries": "embedding"}) from None

    def _checked_query(self, k, image, embedding, exclude_camera, cameras, time_range):
        """(the unit query [1, D], the filters as one hashable tuple) of a search; refusals name the field."""
        if not 1 <= k <= self.settings.max_k:
            raise BadInput("k", f"an integer in 1..{self.settings.max_k} (--max_k)", k)
        query = self.query_vector(image, embedding)
        return query, (exclude_camera, tuple(cameras) if cameras is not None else None, time_range)

    def search(self, k, image=None, embedding=None, exclude_camera=None, cameras=None, time_range=None):
        """The `Hit`s of one query (see `query_vector`), nearest first, searched together with concurrent ones."""
        query, filters = self._checked_query(k, image, embedding, exclude_camera, cameras, time_range)
        try:
            return self._searches.submit(filters, (query, k))
        except ValueError as e:
            raise store_refusal(e) from None

    def searches_inline(self, image=None, exclude_camera=None, cameras=None, time_range=None):
        """Whether `search_inline` may answer a search on the event loop: a query by embedding (no model call),
        no add or delete in flight (its write would hold the search back), and the store's recent searches
        with these filters fast (`sal_tf/serve/inline.py`)."""
        kind = filter_kind((exclude_camera, cameras, time_range))
        return image is None and not self._write_lock.locked() and self._gate.inline(kind)

    def search_inline(self, k, embedding, exclude_camera=None, cameras=None, time_range=None):
        """`search` of a query by embedding on the caller's thread, alone: no batch, no thread hand-off."""
        query, filters = self._checked_query(k, None, embedding, exclude_camera, cameras, time_range)
        try:
            return self._search_batch(filters, [(query, k)])[0]
        except ValueError as e:
            raise store_refusal(e) from None

    def _search_batch(self, filters, payloads):
        """One store search for queries with the same filters: [(query [1, D], k), ...] → their hits (timed)."""
        queries = np.concatenate([q for q, _ in payloads])
        k = max(k for _, k in payloads)
        hits = self._gate.timed(filter_kind(filters), self.store.search, queries, k, *filters)
        return [row[:k] for row, (_, k) in zip(hits, payloads)]

    def hit_json(self, hit):
        """A `Hit`'s JSON with its `same_person` probability (null without a calibration, `people.py`)."""
        return {**hit.to_json(), "same_person": people.same_person(self.calibration, hit.distance, self.store.distance)}

    def attention_png(self, image):
        """PNG bytes of the attention maps of an `Image` (NotSupported without a SAL model in-process)."""
        return self.embedding.attention_png(self.picture(image.data, image.field))

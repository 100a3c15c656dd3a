"""The gallery store interface: `Item`, `GalleryStore`, and the checks both back ends share (`Hit`: hits.py).

A store holds unit embeddings with metadata, one `Item` per id, and answers exact top-k searches
with filters. Both back ends (`FolderStore`, `MilvusStore`) validate through the helpers here, so
the same batch is accepted or refused by both, with the same message.
"""

import abc
import dataclasses
import json
import math
import numbers
import os
import unicodedata
import uuid

import numpy as np

from sal_tf.evaluation.distance import as_matrix, normalise

MAX_K = 16384  # Milvus's largest top-k; the embedded store keeps the same limit
MAX_ID_BYTES = 1024  # UTF-8 bytes of an id (a Milvus VARCHAR primary key)
MAX_PATH_BYTES = 4096
INT64 = (-(2**63), 2**63 - 1)


@dataclasses.dataclass(frozen=True)
class Item:
    """Metadata of one gallery entry.

    Attributes:
        id: stable and opaque (any string; "../../etc/passwd" is just an id). None or "" in `add`:
            a new uuid4 hex is assigned.
        camera: the camera as the user numbers it (e.g. 1 for a Market `c1` file); None: unknown.
        timestamp: seconds (e.g. unix time); None: unknown.
        path: the source path: metadata only, never opened by the store.
        person_id: a known identity, or None.
    """

    id: str = None
    camera: int = None
    timestamp: float = None
    path: str = None
    person_id: int = None


class InvalidField(ValueError):
    """A refused argument: the message names it in backticks, `field` is its name (e.g. "items[2].id", "k")."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


class StoreLockedError(RuntimeError):
    """The store is open for writing in another process (or another handle of this one)."""

    exit_status = 2  # a command (`sal_tf.utils.app.run`) prints the message, no traceback, and exits 2


class StoreCorruptedError(RuntimeError):
    """A store file is damaged in a way a crash cannot explain (not a torn last record)."""

    exit_status = 2


class GalleryStore(abc.ABC):
    """A gallery of unit embeddings with per-item metadata: add / delete / get / search.

    Attributes:
        dim: embedding width, fixed at creation.
        distance: "euclidean" (sqrt(2 − 2·cos), the default) or "cosine" (1 − cos): the
            conventions of `sal_tf.evaluation.distance` (`DISTANCES`, `to_distance`).
        kind: "folder" (the embedded store) or "milvus".
        location: where it lives (folder, .db path or URI).

    Contract of both back ends: embeddings are L2-normalised by the store (zero or non-finite rows
    are refused); `add` validates the whole batch first (a bad batch adds nothing), replaces
    an existing id (upsert) and returns once the batch is durable and searchable; `search` is
    exact, with the filters applied inside the search; an item without a camera / timestamp never
    matches a camera / time filter, and matches when none is given. Thread-safe.
    """

    dim: int
    distance: str
    kind: str
    location: str

    @abc.abstractmethod
    def add(self, embeddings, items):
        """Adds (or replaces, by id) embeddings [n, dim] with their `Item`s; returns the n ids."""

    @abc.abstractmethod
    def delete(self, id):
        """Removes an item; False when the id is unknown."""

    @abc.abstractmethod
    def get(self, id):
        """The `Item` of `id`, or None."""

    @abc.abstractmethod
    def search(self, queries, k, exclude_camera=None, cameras=None, time_range=None):
        """Top-k `Hit`s of each query [m, dim], nearest first (fewer when fewer items match).

        Args:
            k: 1..MAX_K.
            exclude_camera: leave out items of this camera (and items of unknown camera).
            cameras: keep only items of these cameras.
            time_range: (t0, t1): keep only items with t0 <= timestamp <= t1.
        """

    @abc.abstractmethod
    def ids(self):
        """Every item's id (a list, in no particular order)."""

    @abc.abstractmethod
    def items_of_person(self, person_id):
        """Every `Item` of `person_id` (an int64) in time order (`in_time_order`): a person's journey."""

    @property
    @abc.abstractmethod
    def model(self):
        """The model that made the embeddings, as `record_model` recorded it (a path or name), or None."""

    @abc.abstractmethod
    def record_model(self, model):
        """Records the model that made the embeddings in the store itself (kept across reopening)."""

    @abc.abstractmethod
    def count(self):
        """Number of items."""

    @abc.abstractmethod
    def stats(self):
        """dict: kind, count, dim, distance, location, model (when recorded), and back-end details."""

    @abc.abstractmethod
    def close(self):
        """Releases the store (the lock, the connection); further calls fail."""

    def __len__(self):
        return self.count()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{type(self).__name__} {self.location!r} dim={self.dim} distance={self.distance}>"


def recorded_model(meta, legacy_file=None):
    """The model that made a store's embeddings: `meta["model"]` (what `record_model` wrote), else the
    "model" of `legacy_file` (the JSON note `sal-search add` kept beside a store before it held it), else None."""
    if meta.get("model"):
        return meta["model"]
    if legacy_file and os.path.isfile(legacy_file):
        with open(legacy_file) as f:
            return json.load(f).get("model")
    return None


# --- validation shared by both back ends ------------------------------------------------------


def check_dim(dim):
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"`dim` must be a positive integer. Received: {dim!r}")
    return int(dim)


def unit_rows(x, dim, name="embeddings"):
    """float32 [n, dim] unit rows of `x`; ValueError naming `name` for a wrong shape, zero or non-finite rows."""
    x = np.asarray(x)
    if x.ndim == 1 and name == "queries":
        x = x[None]
    try:
        x64 = np.asarray(as_matrix(x, name, f"[count, {dim}]", columns=dim), np.float64)
    except ValueError as e:
        raise InvalidField(name, str(e)) from None
    bad = ~np.isfinite(x64).all(axis=1)
    if bad.any():
        raise InvalidField(name, f"`{name}` row {int(np.flatnonzero(bad)[0])} contains NaN or infinite values.")
    zero = np.linalg.norm(x64, axis=1) == 0
    if zero.any():
        raise InvalidField(name, f"`{name}` row {int(np.flatnonzero(zero)[0])} is all zeros (it has no direction).")
    return normalise(x64, name)


def _optional_int(value, field):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidField(field, f"`{field}` must be an integer or None. Received: {value!r}")
    value = int(value)
    if not INT64[0] <= value <= INT64[1]:
        raise InvalidField(field, f"`{field}` must fit in 64 bits. Received: {value}")
    return value


def _optional_float(value, field):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidField(field, f"`{field}` must be a finite number or None. Received: {value!r}")
    return float(value)


def _optional_text(value, field, max_bytes):
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(field, f"`{field}` must be a string or None. Received: {value!r}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidField(field, f"`{field}` is not valid Unicode text (a lone surrogate).") from None
    if size > max_bytes:
        raise InvalidField(field, f"`{field}` is longer than {max_bytes} bytes (UTF-8).")
    if "\x00" in value:
        raise InvalidField(field, f"`{field}` contains a NUL character.")
    return value


def check_item(item, where="items[0]"):
    """A clean `Item` (ids assigned, numbers as Python ints / floats); ValueError naming the field."""
    if not isinstance(item, Item):
        raise InvalidField(where, f"`{where}` must be a sal_tf.gallery.Item. Received: {type(item).__name__}")
    item_id = check_id(item.id, f"{where}.id") if item.id else uuid.uuid4().hex
    return Item(
        id=item_id,
        camera=_optional_int(item.camera, f"{where}.camera"),
        timestamp=_optional_float(item.timestamp, f"{where}.timestamp"),
        path=_optional_text(item.path, f"{where}.path", MAX_PATH_BYTES),
        person_id=_optional_int(item.person_id, f"{where}.person_id"),
    )


def check_batch(embeddings, items, dim):
    """(float32 [n, dim] unit rows, list of clean `Item`s) of a whole batch, or ValueError (nothing changes)."""
    items = list(items)
    vectors = unit_rows(embeddings, dim)
    if len(vectors) != len(items):
        raise InvalidField("embeddings", f"`embeddings` has {len(vectors)} rows but {len(items)} `items` were given.")
    clean = [check_item(item, f"items[{i}]") for i, item in enumerate(items)]
    seen = {}
    for i, item in enumerate(clean):
        if item.id in seen:
            raise InvalidField(
                f"items[{i}].id", f"`items[{i}].id` {item.id!r} repeats `items[{seen[item.id]}].id` in one batch."
            )
        seen[item.id] = i
    return vectors, clean


def check_id(id, field="id"):
    """`id` if it is a string of at most MAX_ID_BYTES without control characters, else ValueError."""
    if not isinstance(id, str):
        raise InvalidField(field, f"`{field}` must be a string. Received: {id!r}")
    _optional_text(id, field, MAX_ID_BYTES)
    if any(unicodedata.category(ch) == "Cc" for ch in id):
        raise InvalidField(field, f"`{field}` contains a control character (newline, tab, ...). Received: {id!r}")
    return id


def check_person_id(person_id, field="person_id"):
    """`person_id` as a Python int (an integer that fits in 64 bits), else ValueError naming `field`."""
    if person_id is None:
        raise InvalidField(field, f"`{field}` must be an integer. Received: None")
    return _optional_int(person_id, field)


def in_time_order(items):
    """`Item`s sorted by timestamp (unknown times last), then id: the order of a journey."""
    return sorted(items, key=lambda item: (item.timestamp is None, item.timestamp or 0.0, item.id))


def check_search(queries, k, exclude_camera, cameras, time_range, dim):
    """Validated search arguments: (unit queries [m, dim], k, exclude_camera, cameras tuple or None, range or None)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= MAX_K:
        raise InvalidField("k", f"`k` must be an integer in [1, {MAX_K}]. Received: {k!r}")
    q = unit_rows(queries, dim, "queries")
    exclude_camera = _optional_int(exclude_camera, "exclude_camera")
    if cameras is not None:
        if isinstance(cameras, (str, bytes)) or not hasattr(cameras, "__iter__"):
            raise InvalidField("cameras", f"`cameras` must be a list of integers. Received: {cameras!r}")
        cameras = tuple(sorted({_optional_int(c, "cameras[]") for c in cameras} - {None}))
        if not cameras:
            raise InvalidField("cameras", "`cameras` must list at least one camera (leave it out for every camera).")
    if time_range is not None:
        try:
            t0, t1 = time_range
        except (TypeError, ValueError):
            raise InvalidField(
                "time_range", f"`time_range` must be a pair (t0, t1). Received: {time_range!r}"
            ) from None
        t0, t1 = _optional_float(t0, "time_range[0]"), _optional_float(t1, "time_range[1]")
        if t0 is None or t1 is None or t0 > t1:
            raise InvalidField("time_range", f"`time_range` must be (t0, t1) with t0 <= t1. Received: {time_range!r}")
        time_range = (t0, t1)
    return q, int(k), exclude_camera, cameras, time_range


def exact_distances(queries, vectors, distance):
    """Distances [m, k] of unit `queries` [m, dim] to each row's hits `vectors` [m, k, dim], in float64.

    Both back ends rank by the float32 inner product and then report these (renormalised in
    float64), so they agree to ~1e-7 even for a query equal to an item, where sqrt(2 − 2·ip) of a
    float32 ip would magnify its rounding to ~3e-4.
    """
    q, v = np.asarray(queries, np.float64), np.asarray(vectors, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    ip = np.einsum("md,mkd->mk", q, v)
    if distance == "euclidean":
        return np.sqrt(np.maximum(2.0 - 2.0 * ip, 0.0))
    return np.clip(1.0 - ip, 0.0, 2.0)

"""Gallery stores: a growing gallery of embeddings with metadata, searched exactly with filters.

    from sal_tf.gallery import Item, open_store

    with open_store("gallery_store", dim=128) as store:          # a folder: the embedded store
        ids = store.add(embeddings, [Item(camera=1, timestamp=t, path=p) for t, p in ...])
        hits = store.search(query_embeddings, k=10, exclude_camera=1, time_range=(t0, t1))

`open_store(location)` picks the back end from the location: a folder → `FolderStore` (embedded,
durable append-only log, no server); a `*.db` path → `MilvusStore` on the in-process Milvus Lite;
`http(s)://host:19530` → `MilvusStore` on a Milvus server. Both implement `GalleryStore`
(`sal_tf/gallery/base.py`) and give the same results on the same items.

A search answers `Hit`s (`sal_tf/gallery/hits.py`), whose `to_json()` is the one JSON form of a hit
shared by the stores, the index folders (`sal_tf.gallery.faiss_index.GalleryIndex`, a gallery built
once into a faiss index), `sal-search` and `sal-serve`.
"""

import os

from sal_tf.gallery.base import MAX_K, GalleryStore, InvalidField, Item, StoreCorruptedError, StoreLockedError
from sal_tf.gallery.hits import Hit

__all__ = [
    "MAX_K",
    "GalleryStore",
    "Hit",
    "InvalidField",
    "Item",
    "StoreCorruptedError",
    "StoreLockedError",
    "is_store_location",
    "open_store",
]


def open_store(location, dim=None, distance="euclidean", **options):
    """The gallery store at `location`, created when `dim` is given and none is there.

    Args:
        location: a folder (the embedded store), a `*.db` path (Milvus Lite) or an
            `http(s)://host:port` URI (Milvus server).
        dim: embedding width; needed to create a store, checked against an existing one.
        distance: "euclidean" (default) or "cosine", for a new store (an existing one keeps its own).
        **options: back-end options: `index` (both: "auto", "flat", "hnsw", "ivf"; Milvus types too),
            the folder store's `compact_bytes`; Milvus `collection`, `token`, `db_name`, `index_params`,
            `search_params`.

    Raises:
        FileNotFoundError: no store there and no `dim`; ValueError: a dim mismatch or a location
        holding something else; StoreLockedError: the embedded store (or a Milvus Lite file) is open
        in another process; StoreCorruptedError: a folder store's log or snapshot is damaged (the
        message names the byte and `sal-search repair`).
    """
    from sal_tf.gallery import milvus_store

    location = os.fspath(location)
    if not location:
        raise ValueError("The gallery store location is empty; give a folder, a *.db file or a Milvus URI.")
    if milvus_store.is_milvus_location(location):
        return milvus_store.MilvusStore.open(location, dim, distance, **options)
    from sal_tf.gallery import folder_store

    return folder_store.FolderStore.open(location, dim, distance, **options)


def is_store_location(location):
    """True when `location` names a store that exists (a store folder, a Milvus Lite file, or a URI)."""
    from sal_tf.gallery import folder_store, milvus_store

    location = os.fspath(location)
    if milvus_store.is_milvus_location(location):
        return "://" in location or os.path.exists(location)
    return folder_store.is_store_folder(location)

"""The Milvus store's vector index: which Milvus index type, its build and search parameters.

`open_store("http://milvus:19530", dim=128, index="hnsw")` (or a Milvus type name, e.g.
`index="IVF_PQ"`, `index_params={"nlist": 4096}`, `search_params={"nprobe": 64}`):

    store kind   Milvus type   build parameters (defaults)                search parameters
    flat         FLAT          -                                          -
    hnsw         HNSW          M=32, efConstruction=128                   ef=128
    ivf          IVF_PQ        nlist=1024, m=dim/4, nbits=8               nprobe=32
    -            IVF_FLAT      nlist=1024                                 nprobe=32
    -            IVF_SQ8       nlist=1024                                 nprobe=32
    -            HNSW_SQ       M=32, efConstruction=128, SQ8 + FP32 refine ef=128, refine_k=2
    -            DISKANN       - (a server's own defaults)                search_list=100

`auto` (or None) keeps an existing collection's index; a new one gets FLAT on Milvus Lite (a single process's
gallery, exact) and HNSW on a server. Milvus Lite (milvus-lite 3.2) builds only LITE_TYPES: it
accepts IVF_PQ / DISKANN / SCANN at creation and then fails to build them in the background, so
those are refused here for a `*.db` store with a message naming a server. An existing collection
asked for another type is re-indexed: release, drop_index, create_index, load (Milvus builds it from
the stored vectors; searches wait for the load); build parameters apply when an index is built.
The filters are the same boolean expressions for every type (Milvus applies them inside the
index search). The figures behind the defaults and the move from the embedded store to a server:
BUILD.md "Search service".
"""

import logging

KINDS = {"flat": "FLAT", "hnsw": "HNSW", "ivf": "IVF_PQ"}
BUILD = {
    "FLAT": {},
    "HNSW": {"M": 32, "efConstruction": 128},
    "HNSW_SQ": {"M": 32, "efConstruction": 128, "sq_type": "SQ8", "refine": True, "refine_type": "FP32"},
    "IVF_FLAT": {"nlist": 1024},
    "IVF_SQ8": {"nlist": 1024},
    "IVF_PQ": {"nlist": 1024, "nbits": 8},  # m: dim / 4 (`spec`)
    "DISKANN": {},
}
SEARCH = {
    "FLAT": {},
    "HNSW": {"ef": 128},
    "HNSW_SQ": {"ef": 128, "refine_k": 2},
    "IVF_FLAT": {"nprobe": 32},
    "IVF_SQ8": {"nprobe": 32},
    "IVF_PQ": {"nprobe": 32},
    "DISKANN": {"search_list": 100},
}
LITE_TYPES = ("FLAT", "HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8")
INDEX_FIELD = "embedding"

logger = logging.getLogger(__name__)


def index_type(index, lite, current=None):
    """The Milvus index type of the store option `index` (a store kind or a Milvus type name)."""
    if index is not None and not isinstance(index, str):
        raise ValueError(f"`index` must be a string. Received: {index!r}")
    if index in (None, "auto"):
        return current or ("FLAT" if lite else "HNSW")
    wanted = KINDS.get(index, index.upper())
    if wanted not in BUILD:
        raise ValueError(
            f"`index` must be auto, {', '.join(KINDS)} or a Milvus index type ({', '.join(BUILD)}). Received: {index!r}"
        )
    if lite and wanted not in LITE_TYPES:
        raise ValueError(
            f"Milvus Lite cannot build a {wanted} index (`index`={index!r}); it builds {', '.join(LITE_TYPES)}. "
            "Use a Milvus server (an http://host:19530 store) for IVF_PQ or DISKANN."
        )
    return wanted


def spec(index, dim, lite, index_params=None, search_params=None, current=None):
    """(type, build parameters, search parameters) for the store: defaults, then the caller's."""
    kind = index_type(index, lite, current)
    build = dict(BUILD[kind])
    if kind == "IVF_PQ":
        build["m"] = max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)
    for name, given in (("index_params", index_params), ("search_params", search_params)):
        if given is not None and not isinstance(given, dict):
            raise ValueError(f"`{name}` must be a dict of {kind} parameters. Received: {given!r}")
    build.update(index_params or {})
    return kind, build, {**SEARCH[kind], **(search_params or {})}


def current_type(client, collection):
    """The Milvus type of the collection's vector index, or None."""
    if INDEX_FIELD not in client.list_indexes(collection, field_name=INDEX_FIELD):
        return None
    return client.describe_index(collection, INDEX_FIELD).get("index_type")


def prepare(client, collection, dim, lite, exists, index="auto", index_params=None, search_params=None):
    """(type, build parameters, search parameters) of the store's index; an existing collection whose
    index is of another type than an explicit `index` is re-indexed (`reindex`)."""
    current = current_type(client, collection) if exists else None
    kind, build, search = spec(index, dim, lite, index_params, search_params, current)
    if exists and current != kind:
        reindex(client, collection, kind, build)
    return kind, build, search


def index_params(client, kind, build):
    """pymilvus IndexParams of the store's vector index (metric IP on unit vectors)."""
    params = client.prepare_index_params()
    params.add_index(field_name=INDEX_FIELD, index_type=kind, metric_type="IP", params=build, index_name=INDEX_FIELD)
    return params


def reindex(client, collection, kind, build):
    """Replaces the collection's vector index by `kind` / `build` (release, drop, create, load)."""
    logger.info("Milvus collection %s: building a %s index %s (searches wait for it)", collection, kind, build)
    client.release_collection(collection)
    client.drop_index(collection, INDEX_FIELD)
    client.create_index(collection, index_params(client, kind, build))
    client.load_collection(collection)

"""`ServeSettings`: every setting of the search service and its default (the one home of both).

`sal-serve` (`sal_tf/cli/serve.py`) fills it from flags; tests and benchmarks build it directly
and pass it to `sal_tf.serve.create_app` or `sal_tf.serve.server.serve`.
"""

import dataclasses
import ipaddress
import os

API_KEY_ENV = "SAL_SERVE_API_KEY"  # read by the command when --api_key is not given
DEFAULT_DATA_DIR = "serve_data"
LOOPBACK_NAMES = ("localhost",)
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def is_loopback(host):
    """True for 127.0.0.0/8, ::1 and `localhost`: an address only this machine reaches."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass
class ServeSettings:
    """What the service serves and its limits.

    Attributes:
        model: a model in any form `sal_tf.load_embedder` takes (training folder, .keras, SavedModel).
        threads, precision: the model runtime's threads and arithmetic (`sal_tf.load_embedder`; bfloat16:
            the Keras form only).
        tf_serving: instead of `model`, a TF Serving REST model URL
            (`http://host:8501/v1/models/sal[/versions/N]`) serving the exported SavedModel.
        store: the gallery store location (`sal_tf.gallery.open_store`): a folder (faiss), a `*.db`
            file (Milvus Lite) or `http://host:19530` (a Milvus server).
        data_dir: the service's own folder (the stored crops); default: `<store>.crops` for a folder
            or file store, `serve_data` for a Milvus server.
        distance: "euclidean" or "cosine" (a new store's metric; an existing store keeps its own).
        index: the store's search index (`open_store(index=...)`): "auto", "flat", "hnsw", "ivf" (or a
            Milvus index type); None: what the store was given before, else auto.
        index_images: a folder / glob / CSV indexed at start-up when the store is empty.
        calibration: a JSON file holding the model's calibration (`sal_tf.evaluation.calibration`:
            sal-evaluate's output, a results.json, a calibration.json) for each hit's `same_person`;
            default: the one found beside `model` (`calibration.find`); none: `same_person` is null.
        paths_root: a folder whose files an item's `path` may name: such a file is served as the
            item's crop when the service stored none (the items `sal-mtmc --store` adds: give its
            --output_dir); none: only stored crops.
        host, port: where to listen (loopback unless `host` says otherwise).
        api_key: when set, every `/v1` route wants `Authorization: Bearer <api_key>`.
        insecure_no_key: let a server without `api_key` listen beyond loopback (anyone who reaches
            the port may then add, delete and read the gallery); refused otherwise.
        allowed_hosts: the `Host` header values answered (others: 400); default: the loopback
            names for a loopback server, the address itself for another one, any for 0.0.0.0 / ::.
        cors_origins: origins allowed by CORS (none: no CORS headers at all).
        max_k: the largest `k` a search may ask for.
        max_items: the most items one `POST /v1/gallery` may carry.
        max_upload_mb: the largest request body (MiB); a larger one is answered 413 unread.
        max_image_pixels: the most pixels (width x height, read from the image's header before
            decoding) of an uploaded image; a larger one is answered 422 undecoded.
        request_timeout_s: seconds a client has to send a request's headers and body; a
            connection still sending after that is dropped.
        max_connections: requests in flight before the server answers 503 with `Retry-After`.
        max_embedding_batch: images per model call when indexing at start-up.
        tf_serving_timeout_s: seconds to wait for TF Serving.
        progress: print indexing progress.
    """

    model: str = None
    threads: int = None
    precision: str = "float32"
    store: str = None
    tf_serving: str = None
    data_dir: str = None
    distance: str = "euclidean"
    index: str = None
    index_images: str = None
    calibration: str = None
    paths_root: str = None
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str = None
    insecure_no_key: bool = False
    allowed_hosts: tuple = ()
    cors_origins: tuple = ()
    max_k: int = 100
    max_items: int = 64
    max_upload_mb: float = 16.0
    max_image_pixels: int = 4_000_000
    request_timeout_s: float = 20.0
    max_connections: int = 64
    max_embedding_batch: int = 64
    tf_serving_timeout_s: float = 30.0
    progress: bool = True

    def __post_init__(self):
        self.cors_origins = tuple(self.cors_origins or ())
        self.allowed_hosts = tuple(self.allowed_hosts or ())
        self.check()

    def check(self):
        """Raises ValueError naming the setting (as its flag) that is missing or out of range."""
        if (self.model is None) == (self.tf_serving is None):
            raise ValueError("Give exactly one of --model (a model to load) or --tf_serving (a TF Serving model URL).")
        if not self.store:
            raise ValueError("--store is required: a folder (faiss), a *.db file (Milvus Lite) or http://host:19530.")
        if self.distance not in ("euclidean", "cosine"):
            raise ValueError(f"--distance must be 'euclidean' or 'cosine'. Received: {self.distance!r}")
        for name in ("max_k", "max_items", "max_embedding_batch", "max_image_pixels", "max_connections"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name} must be >= 1. Received: {getattr(self, name)}")
        for name in ("max_upload_mb", "request_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name} must be > 0. Received: {getattr(self, name)}")
        if not self.api_key and not self.insecure_no_key and not is_loopback(self.host):
            raise ValueError(
                f"--host={self.host} listens beyond this machine, and without a key anyone who reaches the "
                "port could add, delete and read the gallery: give --api_key (or $SAL_SERVE_API_KEY), or "
                "--insecure_no_key to allow exactly that."
            )
        if not 0 <= int(self.port) < 65536:
            raise ValueError(f"--port must be in 0..65535. Received: {self.port}")

    def model_source(self):
        """The model as a store records it: the absolute path of `model`, or the `tf_serving` URL."""
        if self.model:
            return os.path.abspath(os.path.expanduser(self.model)) if os.path.exists(self.model) else self.model
        return self.tf_serving

    def trusted_hosts(self):
        """The `Host` values answered (`allowed_hosts`, or the default of the listening address)."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        if self.host in WILDCARD_HOSTS:
            return ["*"]
        if is_loopback(self.host):
            return ["127.0.0.1", "localhost", "::1", "[::1]", self.host]
        return [self.host, f"[{self.host}]"] if ":" in self.host else [self.host]

    @property
    def max_body_bytes(self):
        return int(self.max_upload_mb * 1024 * 1024)

    def crops_dir(self):
        """The folder of the stored crops (see `data_dir`)."""
        if self.data_dir:
            return os.path.expanduser(self.data_dir)
        if "://" in self.store:
            return DEFAULT_DATA_DIR
        return os.path.expanduser(self.store).rstrip("/") + ".crops"

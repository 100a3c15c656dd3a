"""sal-serve under load on loopback: search latency and throughput, ingest rate, add → searchable, memory.

    nice -n 5 python benchmarks/search_service.py --output=benchmarks/results/search_service_cpu_2core.jsonl
    python benchmarks/search_service.py --backends=folder --sizes=10000 --requests=200     # a quick run
    # the approximate index (auto: hnsw from 50 k) on rows grown from the demo model's embeddings
    nice -n 10 python benchmarks/search_service.py --backends=folder --dims=128 --image_dim=0 \
        --vectors=model --sizes=1000000 --store_dir=/tmp/search_service_stores

For each case (back end × gallery size × embedding width) the script fills a fresh store directly
(`sal_tf.gallery.open_store(index=--index)`, cameras 1..6 and timestamps over a day; the rows: random
unit vectors, or with `--vectors=model` 128-d rows grown from the demo model's real embeddings with
the queries its embeddings of the same people's other views: `benchmarks/ann_index.py`), compacts it
(`--store_dir`: kept and reused),
starts its own `sal-serve` (`benchmarks/service_process.py`, 127.0.0.1, a `tiny` SAL model
with random weights of that width), runs a fixed number of requests from 1..16 concurrent
clients (threads, one keep-alive connection each), stops the server and prints JSON lines:

* `search_embedding` (k 10; `filtered`: exclude_camera + a half-day time window) and
  `search_image` (a JPEG crop, embedded by the server): queries/s, p50 / p99 latency (ms,
  client side), the median `took_ms` the server reports (its own work, without HTTP and
  queueing in front of the handler), errors;
* `ingest`: crops/s added by image (requests of `--batch` crops, 4 clients: one model call per
  request), then `lost`: acknowledged items missing afterwards (count, and a sample searched by
  image and its crop fetched);
* `add_to_searchable`: from an add's acknowledgement to the first search that finds it (ms), and
  how many were found by the very first search after the acknowledgement;
* `server`: peak RSS of the server process (VmHWM), fill time;
* `store_search`: one `store.search` in the benchmark's own process (before the server starts),
  for 1 and 8 queries at once: the store's share of a search's latency; the folder store's index
  (`stats()`: kind, efSearch / nprobe, its measured recall);
* `served_recall` (`--vectors=model`): recall@10 of the server's answers against exact search.

Crops: the demo gallery (`--images`, default the demo dataset's bounding_box_test) or, when
absent, synthetic person-like images (`sal_tf.export.samples.synthetic_images`). Timings are
wall-clock on a machine that may be shared: the first line records the load average.
"""

import argparse
import base64
import glob
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

CLIENTS = (1, 4, 8, 16)
CAMERAS = 6
DAY = 86400.0
T0 = 1.7e9  # timestamps of the synthetic gallery: one day from here
FILL_CHUNK = 10000
DEMO_GALLERY = "~/.cache/sal_tf/demo/demo_market_v1_seed0/bounding_box_test"


# ------------------------------------------------------------------ set-up
def random_unit_rows(rng, n, dim):
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill_store(location, n, dim, seed=0, real=None, index=None):
    """Adds n items (cameras 1..6, timestamps over a day) to a new store, then compacts it (snapshot and
    index saved, so the server opens without a rebuild); returns seconds. The rows: random unit vectors,
    or with `real` (a `RealEmbeddings`) rows grown from the demo model's embeddings."""
    from sal_tf.gallery import Item, open_store

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with open_store(location, dim=dim, index=index) as store:
        for first, rows in gallery_blocks(rng, n, dim, real):
            cameras = rng.integers(1, CAMERAS + 1, len(rows))
            times = T0 + rng.uniform(0, DAY, len(rows))
            items = [Item(f"synthetic-{first + i}", int(c), float(t)) for i, (c, t) in enumerate(zip(cameras, times))]
            store.add(rows, items)
        store.compact()
    return time.perf_counter() - start


def gallery_blocks(rng, n, dim, real=None):
    """(first row, rows) blocks of at most FILL_CHUNK of the n gallery rows: random, or `real.rows(n)`."""
    if real is None:
        for first in range(0, n, FILL_CHUNK):
            yield first, random_unit_rows(rng, min(FILL_CHUNK, n - first), dim)
        return
    for start, rows in real.rows(n):
        for offset in range(0, len(rows), FILL_CHUNK):
            yield start + offset, rows[offset : offset + FILL_CHUNK]


class RealEmbeddings:
    """Gallery rows and queries built around real-model embeddings: the demo model's embeddings of a generated
    many-identity gallery (`benchmarks/gallery_store.py` `prepare_embeddings`, cached), grown with perturbed
    copies (`benchmarks/ann_index.py` `chunks`); the queries are the model's embeddings of that gallery's
    query images (the same people, other views)."""

    def __init__(self, args):
        from benchmarks.gallery_store import prepare_embeddings, unit_rows

        spec = argparse.Namespace(model=args.embedding_model, work=args.embedding_work, demo_ids=args.demo_ids)
        gallery, queries = prepare_embeddings(spec)
        self.base = np.ascontiguousarray(unit_rows(gallery.astype(np.float32)))
        self.queries = np.ascontiguousarray(unit_rows(queries.astype(np.float32)))

    def rows(self, n):
        """(first row, float32 rows) blocks of the n gallery rows, the same on every call."""
        from benchmarks.ann_index import chunks

        return chunks(self.base, n)

    def exact_top(self, n, queries):
        """Row numbers of each query's exact top 10 in the n-row gallery (`benchmarks/ann_index.py`)."""
        from benchmarks.ann_index import exact_top

        return exact_top(self.base, n, queries, np.ones(n, bool))


def index_stats(location):
    """The index part of the store's `stats()` (kind, setting, measured recall, build time)."""
    from sal_tf.gallery import open_store

    with open_store(location) as store:
        stats = store.stats()
    return {k: v for k, v in stats.items() if k.startswith("index") or k in ("efSearch", "nprobe")}


def store_search_ms(location, dim, batches=(1, 8), repeats=20, pool=None):
    """Median ms of one `store.search` (k 10) in this process, per query batch size: the store's own share.
    The queries: random unit vectors, or the first rows of `pool`."""
    from sal_tf.gallery import open_store

    rng = np.random.default_rng(2)
    out = {}
    with open_store(location) as store:
        for m in batches:
            queries = random_unit_rows(rng, m, dim) if pool is None else pool[:m]
            store.search(queries, 10)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                store.search(queries, 10)
                times.append(time.perf_counter() - start)
            out[f"batch_{m}_ms"] = round(float(np.median(times)) * 1000.0, 2)
    return out


def save_tiny_model(folder, dim):
    """A `tiny` SAL model (random weights) with `dim`-d embeddings, saved as .keras; returns the path."""
    import keras

    from sal_tf.models import build_model

    path = os.path.join(folder, f"tiny_{dim}.keras")
    if not os.path.exists(path):
        keras.utils.set_random_seed(0)
        build_model("tiny", num_classes=16, verbose=False, embedding_dim=dim).save(path)
    return path


def load_crops(spec, count):
    """Up to `count` encoded JPEG crops: the files of `spec`, or synthetic person-like images."""
    files = sorted(glob.glob(os.path.join(os.path.expanduser(spec), "*.jpg")))[:count] if spec else []
    if files:
        return [open(f, "rb").read() for f in files]
    from sal_tf.export.samples import synthetic_images

    return [data for _, data in synthetic_images(count)]


# ------------------------------------------------------------------ load
class Client:
    """One keep-alive HTTP connection to the service."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def request(self, method, path, body=None):
        """(status, parsed JSON or bytes, seconds)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        start = time.perf_counter()
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - start
        is_json = response.getheader("content-type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else data, seconds

    def close(self):
        self.connection.close()


def run_clients(worker, clients):
    """Runs `worker(0)` .. `worker(clients - 1)` in threads at once; the seconds until the last one ends."""
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def run_load(url, path, bodies, requests, clients):
    """`requests` POSTs of `bodies` (cycled) from `clients` threads: qps, p50 / p99 ms, errors."""
    latencies, took, errors, lock = [], [], [0], threading.Lock()

    def worker(index):
        client = Client(url)
        mine, theirs = [], []
        for r in range(index, requests, clients):
            try:
                status, answer, seconds = client.request("POST", path, bodies[r % len(bodies)])
            except (OSError, http.client.HTTPException):
                status, seconds = None, 0.0
                client.close()
                client = Client(url)
            if status == 200:
                mine.append(seconds)
                theirs.append(answer["took_ms"])
            else:
                with lock:
                    errors[0] += 1
        client.close()
        with lock:
            latencies.extend(mine)
            took.extend(theirs)

    wall = run_clients(worker, clients)
    ms = np.asarray(latencies) * 1000.0
    return {
        "clients": clients,
        "requests": requests,
        "queries_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "server_took_p50_ms": round(float(np.median(took)), 2) if took else None,
        "errors": errors[0],
    }


def search_bodies(dim, count, filtered=False, seed=1, pool=None):
    """JSON bodies of `count` searches by embedding: random unit vectors, or the first rows of `pool`."""
    rng = np.random.default_rng(seed)
    bodies = []
    for q in random_unit_rows(rng, count, dim) if pool is None else pool[:count]:
        body = {"embedding": [round(float(v), 7) for v in q], "k": 10}
        if filtered:
            body.update(exclude_camera=int(rng.integers(1, CAMERAS + 1)), time_range=[T0, T0 + DAY / 2])
        bodies.append(json.dumps(body))
    return bodies


def served_recall(url, bodies, truth):
    """recall@10 of the service's answers (one client, in turn) against the exact top 10 rows `truth`."""
    client = Client(url)
    found = []
    for body, rows in zip(bodies, truth):
        _, answer, _ = client.request("POST", "/v1/search", body)
        ids = {int(h["id"].rsplit("-", 1)[1]) for h in answer["results"] if h["id"].startswith("synthetic-")}
        found.append(len(ids & set(rows.tolist())) / len(rows))
    client.close()
    return round(float(np.mean(found)), 4)


def image_bodies(crops, k=10):
    return [json.dumps({"image_b64": base64.b64encode(c).decode(), "k": k}) for c in crops]


def ingest(url, crops, total, batch, clients, tag):
    """Adds `total` crops by image in requests of `batch`: crops/s, errors, and the acknowledged ids."""
    acked, errors, lock = [], [0], threading.Lock()
    batches = []
    for first in range(0, total, batch):
        ids = [f"{tag}-{i}" for i in range(first, min(first + batch, total))]
        items = [
            {"id": i, "image_b64": base64.b64encode(crops[n % len(crops)]).decode(), "camera": 1 + n % CAMERAS}
            for n, i in enumerate(ids, start=first)
        ]
        batches.append((ids, json.dumps({"items": items})))

    def worker(index):
        client = Client(url)
        for ids, body in batches[index::clients]:
            status, answer, _ = client.request("POST", "/v1/gallery", body)
            with lock:
                if status == 200 and answer["ids"] == ids:
                    acked.extend(ids)
                else:
                    errors[0] += 1
        client.close()

    wall = run_clients(worker, clients)
    return (
        {"crops_per_s": round(len(acked) / wall, 1), "items": total, "batch": batch, "clients": clients},
        acked,
        errors[0],
    )


def lost_items(url, acked, crops, sample=40):
    """Acknowledged items that are missing: by count, then a sample searched by image with its crop fetched."""
    client = Client(url)
    missing = 0
    for n in np.linspace(0, len(acked) - 1, min(sample, len(acked))).astype(int):
        item_id = acked[n]
        crop = crops[int(item_id.rsplit("-", 1)[1]) % len(crops)]  # ids end in their crop's index (`ingest`)
        body = json.dumps({"image_b64": base64.b64encode(crop).decode(), "k": 100})
        _, answer, _ = client.request("POST", "/v1/search", body)
        found = any(h["id"] == item_id for h in answer["results"])
        status, _, _ = client.request("GET", f"/v1/gallery/{urllib.parse.quote(item_id, safe='')}/image")
        missing += int(not found or status != 200)
    client.close()
    return missing


def add_to_searchable(url, crops, trials=20):
    """ms from an add's acknowledgement to the first search (by the same image) that returns it."""
    client = Client(url)
    waits, first_search, failures = [], 0, 0
    for t in range(trials):
        image = base64.b64encode(crops[t % len(crops)]).decode()
        item_id = f"fresh-{t}"
        status, _, _ = client.request(
            "POST", "/v1/gallery", json.dumps({"items": [{"id": item_id, "image_b64": image}]})
        )
        acked = time.perf_counter()
        searches = 0
        while status == 200:
            searches += 1
            _, answer, _ = client.request("POST", "/v1/search", json.dumps({"image_b64": image, "k": 100}))
            if any(h["id"] == item_id for h in answer["results"]):
                waits.append((time.perf_counter() - acked) * 1000.0)
                first_search += searches == 1
                break
            if time.perf_counter() - acked > 5:
                failures += 1
                break
    client.close()
    return {
        "trials": trials,
        "p50_ms": round(float(np.median(waits)), 2),
        "max_ms": round(float(np.max(waits)), 2),
        "found_by_first_search": first_search,
        "failures": failures,
    }


# ------------------------------------------------------------------ cases
def store_location(folder, backend):
    return os.path.join(folder, "gallery.db" if backend == "milvus" else "gallery")


def run_case(backend, size, dim, args, models, crops, emit, real=None):
    from benchmarks.service_process import ServiceProcess

    case = {"backend": backend, "gallery": size, "dim": dim, "vectors": args.vectors}
    real = real if dim == 128 else None  # the real embeddings are 128-d; wider cases stay random
    pool = real.queries if real else None
    with tempfile.TemporaryDirectory(prefix="search_service_", dir=args.work_dir) as folder:
        location = store_location(folder, backend)
        if args.store_dir:  # kept between runs: filled once (a 1 M store takes minutes)
            location = os.path.join(os.path.expanduser(args.store_dir), f"{backend}-{args.vectors}-{size}x{dim}")
        fill_s = None
        if not os.path.exists(location):
            fill_s = round(fill_store(location, size, dim, real=real, index=args.index), 1)
        index = index_stats(location) if backend == "folder" else {}
        emit({**case, "benchmark": "store_search", **store_search_ms(location, dim, pool=pool), **index})
        env = {"PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if args.server_omp_threads:
            env["OMP_NUM_THREADS"] = str(args.server_omp_threads)
        log = os.path.join(folder, "server.log")
        server_args = [f"--model={models[dim]}", f"--store={location}", "--max_items=64"]
        with ServiceProcess(server_args, log, env=env, cwd=ROOT) as server:
            start_rss = server.peak_rss_bytes()
            if real:
                queries = real.queries[: args.recall_queries]
                bodies = search_bodies(dim, len(queries), pool=queries)
                recall = served_recall(server.url, bodies, real.exact_top(size, queries))
                emit({**case, "benchmark": "served_recall", "queries": len(queries), "recall_at_10": recall})
            for filtered in (False, True):
                bodies = search_bodies(dim, 256, filtered, pool=pool)
                for clients in CLIENTS if not filtered else (8,):
                    line = run_load(server.url, "/v1/search", bodies, args.requests, clients)
                    emit({**case, "benchmark": "search_embedding", "filtered": filtered, **line})
            if dim == args.image_dim:
                for clients in (1, 8):
                    line = run_load(server.url, "/v1/search", image_bodies(crops), args.image_requests, clients)
                    emit({**case, "benchmark": "search_image", **line})
                before = count_of(server.url)
                line, acked, errors = ingest(server.url, crops, args.ingest, args.batch, 4, f"ingest-{backend}-{size}")
                lost = before + len(acked) - count_of(server.url) + lost_items(server.url, acked, crops)
                emit({**case, "benchmark": "ingest", **line, "errors": errors, "lost": lost})
            emit({**case, "benchmark": "add_to_searchable", **add_to_searchable(server.url, crops)})
            peak = server.peak_rss_bytes()
        emit(
            {
                **case,
                "benchmark": "server",
                "fill_s": fill_s,
                "server_omp_threads": args.server_omp_threads,
                "rss_after_start_mib": mib(start_rss),
                "peak_rss_mib": mib(peak),
            }
        )


def count_of(url):
    client = Client(url)
    _, health, _ = client.request("GET", "/healthz")
    client.close()
    return health["count"]


def mib(n):
    return round(n / 2**20, 1) if n else None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--backends",
        default="folder,milvus",
        help="folder (the embedded store; earlier results: faiss) and/or milvus (Milvus Lite).",
    )
    p.add_argument("--sizes", default="10000,100000", help="Gallery sizes.")
    p.add_argument("--dims", default="128,1024", help="Embedding widths; the wider ones run at the largest size only.")
    p.add_argument("--wide_backends", default="folder", help="Back ends that also run the wider widths.")
    p.add_argument("--image_dim", type=int, default=128, help="The width whose cases also search and ingest by image.")
    p.add_argument("--requests", type=int, default=400, help="Searches by embedding per client count.")
    p.add_argument("--image_requests", type=int, default=160, help="Searches by image per client count.")
    p.add_argument("--ingest", type=int, default=1024, help="Crops added by image per case.")
    p.add_argument("--batch", type=int, default=32, help="Crops per ingest request.")
    p.add_argument("--images", default=DEMO_GALLERY, help="Folder of JPEG crops (synthetic ones when absent).")
    p.add_argument("--work_dir", default=None, help="Where the temporary stores go (default: the system's).")
    p.add_argument(
        "--vectors",
        choices=["random", "model"],
        default="random",
        help="The 128-d gallery: random unit vectors, or rows grown from the demo model's real embeddings "
        "(benchmarks/ann_index.py), searched with the model's query embeddings.",
    )
    p.add_argument("--index", default=None, help="The store's index (open_store(index=...)); default: auto.")
    p.add_argument(
        "--store_dir",
        default=None,
        help="Keep each case's store in this folder and reuse it when there (not refilled; the runs' adds stay).",
    )
    p.add_argument("--server_omp_threads", type=int, default=None, help="OMP_NUM_THREADS of the server (faiss).")
    p.add_argument("--recall_queries", type=int, default=200, help="--vectors=model: queries of served_recall.")
    p.add_argument("--embedding_model", default="/tmp/base_runs/demo/stage2.keras", help="--vectors=model: its model.")
    p.add_argument("--embedding_work", default="~/.cache/sal_tf/gallery_bench", help="--vectors=model: its cache.")
    p.add_argument("--demo_ids", type=int, default=1800, help="--vectors=model: identities of its demo gallery.")
    p.add_argument("--output", default=None, help="Also append the JSON lines to this file.")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = open(args.output, "a") if args.output else None

    def emit(line):
        text = json.dumps(line)
        print(text, flush=True)
        if out:
            out.write(text + "\n")
            out.flush()

    sizes = [int(s) for s in args.sizes.split(",")]
    dims = [int(d) for d in args.dims.split(",")]
    crops = load_crops(args.images, 256)
    real = RealEmbeddings(args) if args.vectors == "model" else None
    emit(
        {
            "benchmark": "search_service_setup",
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "crops": len(crops),
            "note": "client threads share the machine with the server",
        }
    )
    with tempfile.TemporaryDirectory(prefix="search_service_models_") as models_dir:
        models = {d: save_tiny_model(models_dir, d) for d in dims}
        for backend in args.backends.split(","):
            for size in sizes:
                for dim in dims:
                    wide_case = size == max(sizes) and backend in args.wide_backends.split(",")
                    if dim == args.image_dim or wide_case:
                        run_case(backend, size, dim, args, models, crops, emit, real)
    if out:
        out.close()


if __name__ == "__main__":
    main()

"""The folder store's approximate index (sal_tf/gallery/ann_index.py) at 1 M and 10 M rows, and where `auto` switches.

    nice -n 10 python benchmarks/ann_index.py --output=benchmarks/results/ann_index_cpu_2core.jsonl   # 1 M, hnsw + ivf
    nice -n 10 python benchmarks/ann_index.py --cases=store --size=10000000 --kinds=ivf                # the 10 M case
    nice -n 10 python benchmarks/ann_index.py --cases=auto                                            # exact vs hnsw by size
    nice -n 10 python benchmarks/ann_index.py --cases=calibration --size=300000                       # what calibrates

One JSON line per case, each in its own child process (`peak_rss_mib`: that process's `ru_maxrss`):

* `store`: a folder store opened with `index=<kind>` filled to --size × 128-d rows built around
  real-model embeddings (the demo model's embeddings of a many-identity demo gallery, grown with
  perturbed copies: `benchmarks/gallery_store.py` `prepare_embeddings` / `grow`, here in float32
  chunks), 6 cameras at random, timestamps = row number; added in batches of --batch (each durable
  before the next), then `compact()` (snapshot + index saved). Then, for --queries real query
  embeddings: recall@10 against exact search (the exact top 10 computed chunk by chunk with
  `faiss.knn`) with no filter, `exclude_camera=1` (5/6 of the rows kept) and `cameras=[2]` (1/6);
  one query at a time through `store.search` (hits built): p50 / p99 ms (`ann_store` lines); the
  build (`ann_build`: add, compact, the `stats()` index part, that process's peak). Then `reopen`,
  a fresh process: open (no rebuild: `index_build_s` unchanged), one-query p50 / p99, its peak
  memory: what a service holding the store pays (`ann_reopen`).
* `auto`: one query's p50 through a flat store and through an hnsw store at several sizes, with
  the hnsw build time: the sizes where exact search stops paying (`ann_index.AUTO_MIN_ROWS`).
* `calibration`: an `ann_index.AnnIndex` of each of --kinds over --size rows; at each efSearch /
  nprobe step, recall@10 against exact search of the gallery's own rows (each one's own row left
  out: the old calibration), of `ann_index.calibration_queries` (the calibration since) and of the
  model's real queries (new views of enrolled people: what a service is asked). The calibration
  queries should find no more than the real ones at every step (`ann_index.TARGET_RECALL`).

Every line has the load average; progress goes to stderr.

Wall-clock on a shared 2-core machine; compare within one run.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks.gallery_store import unit_rows  # noqa: E402

K = 10
CAMERAS = 6
CHUNK = 100_000  # rows generated (and compared exactly) at a time: the benchmark's own memory stays small
FILTERS = {"none": {}, "exclude_camera": {"exclude_camera": 1}, "one_camera": {"cameras": [2]}}


def peak_rss_mib():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message} (peak {peak_rss_mib():.0f} MiB)", file=sys.stderr, flush=True)


def load_average():
    return [round(v, 2) for v in os.getloadavg()]


def chunks(base, size, noise=0.15):
    """(start, float32 rows) of `size` rows: `base` first, then perturbed copies of its rows (new views of
    the same people, as `benchmarks/gallery_store.py` `grow`), CHUNK at a time, the same on every call."""
    yield 0, base[:size]
    for start in range(len(base), size, CHUNK):
        rng = np.random.default_rng([start, 9])
        n = min(CHUNK, size - start)
        rows = base[rng.integers(0, len(base), n)]
        step = noise / np.sqrt(base.shape[1])
        yield start, unit_rows(rows + step * rng.standard_normal(rows.shape, dtype=np.float32)).astype(np.float32)


def cameras_of(size):
    return np.random.default_rng(5).integers(1, CAMERAS + 1, size)


def exact_top(base, size, queries, keep):
    """Exact top-K rows of each query among the kept rows (inner product), chunk by chunk."""
    import faiss

    best_s = np.full((len(queries), K), -np.inf, np.float32)
    best_i = np.full((len(queries), K), -1, np.int64)
    for start, rows in chunks(base, size):
        kept = np.flatnonzero(keep[start : start + len(rows)])
        if not len(kept):
            continue
        s, i = faiss.knn(
            queries, np.ascontiguousarray(rows[kept]), min(K, len(kept)), metric=faiss.METRIC_INNER_PRODUCT
        )
        s = np.concatenate([best_s, s], axis=1)
        i = np.concatenate([best_i, np.where(i >= 0, start + kept[np.maximum(i, 0)], -1)], axis=1)
        top = np.argsort(-s, axis=1, kind="stable")[:, :K]
        best_s, best_i = np.take_along_axis(s, top, axis=1), np.take_along_axis(i, top, axis=1)
    return best_i


def calibration_case(args, base, queries):
    """recall@10 at each step of own rows, calibration queries and real queries (module docstring)."""
    import contextlib

    import faiss

    from sal_tf.gallery import ann_index

    vectors = np.concatenate([rows for _, rows in chunks(base, args.size)])
    own_rows = np.sort(np.random.default_rng(1).choice(len(vectors), ann_index.CALIBRATION_QUERIES, replace=False))
    sets = {"own_rows": vectors[own_rows], "calibration": ann_index.calibration_queries(vectors), "real": queries}
    truth = {name: faiss.knn(q, vectors, K + 1, metric=faiss.METRIC_INNER_PRODUCT)[1] for name, q in sets.items()}
    truth["own_rows"] = np.array([[r for r in t if r != own][:K] for t, own in zip(truth["own_rows"], own_rows)])
    for kind in args.kinds:
        index = ann_index.AnnIndex(kind, vectors.shape[1])
        t = time.perf_counter()
        index.build_if_due(vectors, contextlib.nullcontext)
        build_s = time.perf_counter() - t
        progress(f"{kind} built in {build_s:.0f} s: {index.setting}")
        for setting in index.steps():
            line = {"benchmark": "ann_calibration", "size": args.size, "kind": kind, **setting}
            for name, q in sets.items():
                found = index.search(q, K + 1, vectors, None, setting)
                if name == "own_rows":
                    found = np.array([[r for r in f if r != own][:K] for f, own in zip(found, own_rows)])
                line[f"recall_{name}"] = round(ann_index.recall_at(found[:, :K], truth[name][:, :K]), 4)
            yield {**line, "calibrated": setting == index.setting, "load_avg": load_average()}


def store_case(args, base, queries):
    """Fills a store at args.folder, compacts it, measures recall and latency (one line per filter)."""
    from sal_tf.gallery import Item, open_store

    cams = cameras_of(args.size)
    start_t = time.perf_counter()
    store = open_store(args.folder, dim=base.shape[1], index=args.kind)
    if store.count() == args.size:  # --store_dir filled by an earlier run: measure it as it opens
        yield from measured_store(
            store, base, queries, cams, args, {"reused_store_open_s": round(time.perf_counter() - start_t, 1)}
        )
        return
    for start, rows in chunks(base, args.size):
        if start // 1_000_000 != (start + len(rows)) // 1_000_000:
            progress(f"added {start + len(rows)} rows")
        for s in range(0, len(rows), args.batch):
            r = start + s
            block = rows[s : s + args.batch]
            items = [Item(id=str(r + j), camera=int(cams[r + j]), timestamp=float(r + j)) for j in range(len(block))]
            store.add(block, items)
    add_s = time.perf_counter() - start_t
    progress("compacting")
    t = time.perf_counter()
    store.compact()
    compact_s = time.perf_counter() - t
    progress("measuring")
    build = {"add_s": round(add_s, 1), "items_per_s": round(args.size / add_s), "compact_s": round(compact_s, 1)}
    yield from measured_store(store, base, queries, cams, args, build)


def measured_store(store, base, queries, cams, args, build):
    """The `ann_store` lines of the filled `store`, then its `ann_build` line with `build`; closes it."""
    results = measure(store, base, queries, cams, args)
    stats = store.stats()
    store.close()
    index = {k: v for k, v in stats.items() if k.startswith("index") or k in ("efSearch", "nprobe", "rescore")}
    for row in results:
        yield {"benchmark": "ann_store", "size": args.size, "dim": int(base.shape[1]), "kind": args.kind, **row}
    yield {
        "benchmark": "ann_build",
        "size": args.size,
        "kind": args.kind,
        **build,
        **index,
        "peak_rss_mib": peak_rss_mib(),
        "load_avg": load_average(),
    }


def reopen_case(args, base, queries):
    """A fresh process opens the store (no rebuild) and searches: what a service pays, its peak memory."""
    from sal_tf.gallery import open_store

    before = peak_rss_mib()
    t = time.perf_counter()
    store = open_store(args.folder)
    open_s = time.perf_counter() - t
    times = []
    for q in queries:
        t = time.perf_counter()
        store.search(q, K)
        times.append(1000 * (time.perf_counter() - t))
    stats = store.stats()
    store.close()
    disk = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.folder) for f in fs)
    yield {
        "benchmark": "ann_reopen",
        "size": args.size,
        "kind": args.kind,
        "open_s": round(open_s, 2),
        "index_build_s": stats.get("index_build_s"),
        "index_built": stats.get("index_built"),
        "ms_p50": round(float(np.percentile(times, 50)), 3),
        "ms_p99": round(float(np.percentile(times, 99)), 3),
        "disk_mib": round(disk / 2**20),
        "rss_before_open_mib": before,
        "peak_rss_mib": peak_rss_mib(),
        "load_avg": load_average(),
    }


def measure(store, base, queries, cams, args):
    rows = []
    for name, filters in FILTERS.items():
        keep = np.ones(args.size, bool)
        if "exclude_camera" in filters:
            keep = cams != filters["exclude_camera"]
        if "cameras" in filters:
            keep = np.isin(cams, filters["cameras"])
        truth = exact_top(base, args.size, queries, keep)
        times, found = [], []
        for q in queries:
            t = time.perf_counter()
            hits = store.search(q, K, **filters)[0]
            times.append(1000 * (time.perf_counter() - t))
            found.append([int(h.id) for h in hits])
        recall = float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth)]))
        rows.append(
            {
                "filter": name,
                "kept_fraction": round(float(keep.mean()), 3),
                "queries": len(queries),
                "recall_at_10": round(recall, 4),
                "ms_p50": round(float(np.percentile(times, 50)), 3),
                "ms_p99": round(float(np.percentile(times, 99)), 3),
                "load_avg": load_average(),
            }
        )
        progress(f"{rows[-1]}")
    return rows


def auto_case(args, base, queries):
    from sal_tf.gallery import Item, open_store

    for size in args.auto_sizes:
        for kind in ("flat", "hnsw"):
            work = tempfile.mkdtemp(prefix="ann_auto_", dir=args.tmp)
            try:
                store = open_store(os.path.join(work, "s"), dim=base.shape[1], index=kind)
                t = time.perf_counter()
                for start, rows in chunks(base, size):
                    for s in range(0, len(rows), 10_000):
                        block = rows[s : s + 10_000]
                        store.add(block, [Item(id=str(start + s + j)) for j in range(len(block))])
                add_s = time.perf_counter() - t
                times = []
                for q in queries[:200]:
                    t = time.perf_counter()
                    store.search(q, K)
                    times.append(1000 * (time.perf_counter() - t))
                yield {
                    "benchmark": "ann_auto",
                    "size": size,
                    "kind": kind,
                    "add_s": round(add_s, 1),
                    "ms_p50": round(float(np.percentile(times, 50)), 3),
                    "peak_rss_mib": peak_rss_mib(),
                }
                store.close()
            finally:
                shutil.rmtree(work, ignore_errors=True)


def child(args):
    from benchmarks.gallery_store import prepare_embeddings

    gallery, queries = prepare_embeddings(args)
    base = np.ascontiguousarray(unit_rows(gallery.astype(np.float32)))
    queries = np.ascontiguousarray(unit_rows(queries.astype(np.float32))[: args.queries])
    case = {"store": store_case, "reopen": reopen_case, "auto": auto_case, "calibration": calibration_case}[args.case]
    for row in case(args, base, queries):
        print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=lambda s: s.split(","), default=["store"])
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=["hnsw", "ivf"])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="items per add")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--auto_sizes", type=lambda s: [int(v) for v in s.split(",")], default=[25_000, 100_000])
    parser.add_argument("--model", default="/tmp/base_runs/demo/stage2.keras", help="model for the real embeddings")
    parser.add_argument("--work", default="~/.cache/sal_tf/gallery_bench", help="generated gallery and embeddings")
    parser.add_argument("--demo_ids", type=int, default=1800, help="test identities of the generated gallery")
    parser.add_argument("--tmp", help="folder for the stores (default: the system's temporary folder)")
    parser.add_argument("--output", help="also append the JSON lines to this file")
    parser.add_argument(
        "--store_dir", help="a store folder kept after the run; one holding --size rows is measured without refilling"
    )
    parser.add_argument("--case", choices=["store", "reopen", "auto", "calibration"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        return child(args)
    passed = [a for a in sys.argv[1:] if not a.startswith(("--cases", "--kinds", "--output", "--store_dir"))]
    if "store" in args.cases:
        for kind in args.kinds:
            folder = args.store_dir or os.path.join(tempfile.mkdtemp(prefix="ann_bench_", dir=args.tmp), "store")
            try:
                for case in ("store", "reopen"):
                    _child([f"--case={case}", f"--kind={kind}", f"--folder={folder}", *passed], args.output)
            finally:
                if not args.store_dir:
                    shutil.rmtree(os.path.dirname(folder), ignore_errors=True)
    for case in ("auto", "calibration"):
        if case in args.cases:
            _child([f"--case={case}", f"--kinds={','.join(args.kinds)}", *passed], args.output)


def _child(argv, output):
    proc = subprocess.run(  # its progress and errors on this process's stderr
        [sys.executable, os.path.abspath(__file__), *argv],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode:
        lines.append(json.dumps({"benchmark": "error", "case": argv, "returncode": proc.returncode}))
    for line in lines:
        print(line, flush=True)
        if output:
            with open(output, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()

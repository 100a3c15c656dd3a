"""Index kinds at their defaults on a trained model's embeddings, and the gallery stores at scale.

    python benchmarks/gallery_store.py --output=benchmarks/results/gallery_store_cpu_2core.jsonl
    python benchmarks/gallery_store.py --cases=recall --sweep          # the grid the defaults came from
    python benchmarks/gallery_store.py --cases=store --store_sizes=100000 --milvus_size=20000  # quick

One JSON line per case, each case in its own child process (`peak_rss_mib` is that process's peak
resident memory, `ru_maxrss`):

* `recall`: `GalleryIndex` of each kind (`flat`, `ivf`, `ivf_flat`) built at its defaults on real
  embeddings: a demo gallery of many identities (`sal_tf.data.demo.generate_demo_dataset`,
  --demo_ids test ids: ~20 k crops for 1,800) embedded with --model (the demo's tiny model,
  128-d), queried with its query split; the same embeddings lifted to 1024-d by a random
  orthonormal map plus a little noise (a paper-width stand-in: a trained model's neighbour
  structure in 1024 dims); and both grown past the exact fall-back (400 k at 128-d, 100 k at
  1024-d) with perturbed copies of the crops (more views of the same people: near-duplicates,
  IVF-PQ's hard case). `recall_at_10` is the fraction of the exact top 10 found; ms per query in
  batches of 100 and one at a time. With `--sweep`, also the `ivf` grid (nprobe × PQ size ×
  re-scoring factor), forced past the exact fall-back.
* `kernel`: the exact search kernels the embedded store could use, one query and 100, at 100 k
  and 1 M × 128-d: numpy (BLAS product + argpartition) vs faiss `IndexFlatIP` (+ `IDSelectorBitmap`
  for a filter) vs `faiss.knn`.
* `store`: the stores themselves on random 128-d unit vectors with camera / time metadata:
  add throughput (batches of 1,000, each durable before the next), query latency (one query; no
  filter, exclude a camera, a 10 % time window), open time (log replay, then snapshot load after
  `compact`), peak RSS. The embedded store at --store_sizes (default 100 k and 1 M); Milvus Lite
  at --milvus_size (default 100 k: its pure-Python engine adds ~1 M rows far too slowly here).

Timings are wall-clock on a shared 2-core machine: compare within one run.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks.json_lines import JsonLines, child_lines, load_average, machine_line, peak_rss_mib  # noqa: E402

BATCH = 100
K = 10
WIDE = 1024


def unit_rows(x):
    """float32 rows scaled to unit length (the benchmarks' one normaliser)."""
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------ real embeddings
def prepare_embeddings(args):
    """(gallery [N, 128], queries [Q, 128]) of the demo model on a generated many-identity demo gallery (cached)."""
    work = os.path.expanduser(args.work)
    gallery_npz, query_npz = os.path.join(work, "gallery_tiny.npz"), os.path.join(work, "query_tiny.npz")
    if not (os.path.isfile(gallery_npz) and os.path.isfile(query_npz)):
        from sal_tf.data.demo import generate_demo_dataset
        from sal_tf.inference import embedding_files, loading, sources

        data = os.path.join(work, f"demo_{args.demo_ids}")
        if not os.path.isdir(os.path.join(data, "query")):
            generate_demo_dataset(data, seed=1, num_train_ids=1, num_test_ids=args.demo_ids)
        embedder = loading.load_embedder(args.model)
        for folder, out in (("bounding_box_test", gallery_npz), ("query", query_npz)):
            images = sources.list_images(os.path.join(data, folder))
            embedding_files.save_npz(out, embedding_files.embed_images(embedder, images, 128, progress=False))
    with np.load(gallery_npz) as g, np.load(query_npz) as q:
        return g["embeddings"], q["embeddings"]


def widen(x, seed=0, noise=0.02):
    """`x` [n, d] mapped into WIDE dims by a random orthonormal map, plus isotropic noise, unit rows."""
    rng = np.random.default_rng([seed, 7])
    basis = np.linalg.qr(rng.standard_normal((WIDE, x.shape[1])))[0].astype(np.float32)
    y = x @ basis.T + noise / np.sqrt(WIDE) * rng.standard_normal((len(x), WIDE)).astype(np.float32)
    return unit_rows(y)


def grow(gallery, n, seed=0, noise=0.15):
    """`n` rows like `gallery`'s: its rows plus perturbed copies (new views of the same people)."""
    rng = np.random.default_rng([seed, 9])
    rows = rng.integers(0, len(gallery), n - len(gallery))
    extra = gallery[rows] + noise / np.sqrt(gallery.shape[1]) * rng.standard_normal((len(rows), gallery.shape[1]))
    return np.concatenate([gallery, unit_rows(extra)])


def _timed_search(index, q, **kw):
    times, rows = [], []
    for s in range(0, len(q), BATCH):
        t = time.perf_counter()
        rows.append(index.search(q[s : s + BATCH], K, **kw)[1])
        times.append(time.perf_counter() - t)
    single = []
    for i in range(min(50, len(q))):
        t = time.perf_counter()
        index.search(q[i : i + 1], K, **kw)
        single.append(time.perf_counter() - t)
    return np.concatenate(rows), 1000 * float(np.median(times)) / BATCH, 1000 * float(np.median(single))


def _recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def recall_case(args):
    from sal_tf.gallery.faiss_index import GalleryIndex

    gallery, queries = prepare_embeddings(args)
    queries = queries[: args.recall_queries]
    sets = [
        ("tiny_128", lambda: gallery, lambda: queries),
        ("tiny_128_grown_400k", lambda: grow(gallery, 400_000), lambda: queries),
        ("tiny_lifted_1024", lambda: widen(gallery), lambda: widen(queries)),
        ("tiny_lifted_1024_grown_100k", lambda: widen(grow(gallery, 100_000)), lambda: widen(queries)),
    ]
    for name, make_g, make_q in sets:
        if args.recall_sets and name not in args.recall_sets:
            continue
        g, q = make_g(), make_q()
        paths = [str(i) for i in range(len(g))]
        truth = None
        for kind in ("flat", "ivf", "ivf_flat"):
            start = time.perf_counter()
            index = GalleryIndex.build(g, paths, kind=kind)
            build_s = time.perf_counter() - start
            rows, ms_batch, ms_single = _timed_search(index, q)
            truth = rows if kind == "flat" else truth
            yield {
                "benchmark": "recall",
                "embeddings": name,
                "size": len(g),
                "dim": g.shape[1],
                "queries": len(q),
                "kind": kind,
                "built": index.info["kind"],
                "factory": index.info.get("factory", "Flat"),
                "nlist": index.info.get("nlist"),
                "nprobe": index.info.get("nprobe"),
                "recall_at_10": round(_recall(rows, truth), 4),
                "ms_per_query_batch100": round(ms_batch, 4),
                "ms_one_query": round(ms_single, 3),
                "build_s": round(build_s, 2),
                "peak_rss_mib": peak_rss_mib(),
            }
        if args.sweep:
            yield from sweep(name, g, q)


def sweep(name, g, q):
    """recall@10 and ms/query of forced IVF-PQ settings (no exact fall-back) on `g`."""
    import faiss

    from sal_tf.gallery import faiss_index as search_lib

    search_lib.use_blas_for_batches()
    d = g.shape[1]
    flat = faiss.IndexFlatIP(d)
    flat.add(g)
    truth = flat.search(q, K)[1]
    nlist = search_lib.default_nlist(len(g))
    train = g[np.random.default_rng(0).choice(len(g), min(len(g), 64 * nlist), replace=False)]
    for m in sorted({d // 16, d // 8, d // 4, d // 2}):
        index = faiss.index_factory(d, f"IVF{nlist},PQ{m}x4fs,RFlat", faiss.METRIC_INNER_PRODUCT)
        faiss.extract_index_ivf(index).cp.seed = 0
        index.train(train)
        index.add(g)
        for k_factor in (10, 32, 100):
            index.k_factor = k_factor
            for nprobe in (8, 16, 32, 64):
                if nprobe > nlist:
                    continue
                faiss.extract_index_ivf(index).nprobe = nprobe
                t = time.perf_counter()
                rows = np.concatenate([index.search(q[s : s + BATCH], K)[1] for s in range(0, len(q), BATCH)])
                ms = 1000 * (time.perf_counter() - t) / len(q)
                yield {
                    "benchmark": "ivf_sweep",
                    "embeddings": name,
                    "size": len(g),
                    "dim": d,
                    "nlist": nlist,
                    "pq_m": m,
                    "k_factor": k_factor,
                    "nprobe": nprobe,
                    "recall_at_10": round(_recall(rows, truth), 4),
                    "ms_per_query_batch100": round(ms, 4),
                }


# ------------------------------------------------------------------ exact kernels
def _kernels(x, keep):
    """name → search function (queries → top 10) of each exact kernel over the unit rows `x`."""
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    bits = np.packbits(keep, bitorder="little")
    params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(x), faiss.swig_ptr(bits)))
    penalty = np.where(keep, np.float32(0), np.float32(-np.inf))

    def numpy_topk(q, mask=None):
        s = q @ x.T
        if mask is not None:
            s += mask
        top = np.argpartition(-s, K - 1, axis=1)[:, :K]
        return np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), 1), 1)

    return {
        "numpy": numpy_topk,
        "numpy_filtered": lambda q: numpy_topk(q, penalty),
        "faiss_flat": lambda q: index.search(q, K),
        "faiss_flat_filtered": lambda q: index.search(q, K, params=params),
        "faiss_knn": lambda q: faiss.knn(q, x, K, metric=faiss.METRIC_INNER_PRODUCT),
    }


def kernel_case(args):
    from sal_tf.gallery import faiss_index as search_lib

    search_lib.use_blas_for_batches()
    rng = np.random.default_rng(0)
    for n in args.store_sizes:
        x = unit_rows(rng.standard_normal((n, 128), np.float32))
        keep = rng.integers(0, 6, n) != 2  # a camera left out
        for name, fn in _kernels(x, keep).items():
            for q in (x[:1] + 0.01, x[:BATCH] + 0.01):
                fn(q)
                times = []
                for _ in range(max(3, 30 // len(q))):
                    t = time.perf_counter()
                    fn(q)
                    times.append(time.perf_counter() - t)
                yield {
                    "benchmark": "kernel",
                    "method": name,
                    "size": n,
                    "dim": 128,
                    "queries": len(q),
                    "ms_per_call": round(1000 * float(np.median(times)), 3),
                }


# ------------------------------------------------------------------ stores
def _store_rows(n, seed=0):
    """Yields (vectors [<=1000, 128], items) batches: random unit vectors, cameras 1..6, times 0..n."""
    from sal_tf.gallery import Item

    rng = np.random.default_rng(seed)
    for start in range(0, n, 1000):
        count = min(1000, n - start)
        items = [
            Item(id=f"i{start + j}", camera=int(rng.integers(1, 7)), timestamp=float(start + j)) for j in range(count)
        ]
        yield unit_rows(rng.standard_normal((count, 128), np.float32)), items


def _latencies(store, q, **filters):
    store.search(q[:1], K, **filters)
    times = []
    for row in q:
        t = time.perf_counter()
        store.search(row[None], K, **filters)
        times.append(time.perf_counter() - t)
    times = np.array(times) * 1000
    return round(float(np.median(times)), 3), round(float(np.percentile(times, 99)), 3)


def store_case(args):
    from sal_tf.gallery import open_store

    n, kind = args.size, args.kind
    work = tempfile.mkdtemp(prefix="store_bench_", dir=args.tmp)
    location = os.path.join(work, "store" if kind == "folder" else "store.db")
    base = {"benchmark": "store", "kind": kind, "size": n, "dim": 128}
    try:
        store = open_store(location, dim=128)
        start = time.perf_counter()
        for vectors, items in _store_rows(n):
            store.add(vectors, items)
        add_s = time.perf_counter() - start
        q = unit_rows(np.random.default_rng(1).standard_normal((args.store_queries, 128), np.float32))
        line = {**base, "add_items_per_s": round(n / add_s, 1), "add_s": round(add_s, 1)}
        for label, filters in (
            ("no_filter", {}),
            ("exclude_camera", {"exclude_camera": 3}),
            ("cameras_2_of_6", {"cameras": [1, 2]}),
            ("time_10pct", {"time_range": (0.45 * n, 0.55 * n)}),
        ):
            p50, p99 = _latencies(store, q, **filters)
            line[f"ms_{label}_p50"], line[f"ms_{label}_p99"] = p50, p99
        line["stats"] = {k: v for k, v in store.stats().items() if k not in ("location",)}
        store.close()
        start = time.perf_counter()
        store = open_store(location)
        line["open_s"] = round(time.perf_counter() - start, 2)  # folder store: log replay
        assert store.count() == n
        if kind == "folder":
            start = time.perf_counter()
            store.compact()
            line["compact_s"] = round(time.perf_counter() - start, 2)
            store.close()
            start = time.perf_counter()
            store = open_store(location)
            line["open_after_compact_s"] = round(time.perf_counter() - start, 2)
        store.close()
        line["disk_mib"] = round(
            sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(work) for f in fs) / 2**20, 1
        )
        line["peak_rss_mib"] = peak_rss_mib()
        yield line
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------ driver
def child(case_args, args):
    cmd = [sys.executable, os.path.abspath(__file__), *case_args, f"--work={args.work}", f"--model={args.model}"]
    cmd += [
        f"--demo_ids={args.demo_ids}",
        f"--store_queries={args.store_queries}",
        f"--recall_queries={args.recall_queries}",
    ]
    cmd += ["--sweep"] if args.sweep else []
    cmd += [f"--recall_sets={','.join(args.recall_sets)}"] if args.recall_sets else []
    cmd += [f"--store_sizes={','.join(map(str, args.store_sizes))}"]
    if args.tmp:
        cmd.append(f"--tmp={args.tmp}")
    return child_lines(cmd, case_args, env={"TF_CPP_MIN_LOG_LEVEL": "2"})


def cases(args):
    if "recall" in args.cases:
        yield ["--case=recall"]
    if "kernel" in args.cases:
        yield ["--case=kernel"]
    if "store" in args.cases:
        for n in args.store_sizes:
            yield ["--case=store", "--kind=folder", f"--size={n}"]
        if args.milvus_size:
            yield ["--case=store", "--kind=milvus", f"--size={args.milvus_size}"]


def parent(args):
    out = JsonLines(args.output)
    note = "shared machine: compare within this run"
    out.emit(machine_line("gallery_store_setup", ("faiss", "numpy"), model=args.model, note=note))
    for case_args in cases(args):
        for line in child(case_args, args):
            line["load_average"] = load_average()
            out.emit(line)
    out.save()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=lambda s: s.split(","), default=["recall", "kernel", "store"])
    parser.add_argument("--model", default="/tmp/base_runs/demo/stage2.keras", help="model for the real embeddings")
    parser.add_argument("--work", default="~/.cache/sal_tf/gallery_bench", help="generated gallery and embeddings")
    parser.add_argument("--demo_ids", type=int, default=1800, help="test identities of the generated gallery")
    parser.add_argument("--sweep", action="store_true", help="recall: also the ivf parameter grid")
    parser.add_argument("--store_sizes", type=lambda s: [int(v) for v in s.split(",")], default=[100_000, 1_000_000])
    parser.add_argument("--milvus_size", type=int, default=100_000)
    parser.add_argument("--store_queries", type=int, default=200)
    parser.add_argument("--recall_queries", type=int, default=2000)
    parser.add_argument("--recall_sets", type=lambda s: s.split(","), help="recall: only these embedding sets")
    parser.add_argument("--output", help="also write the JSON lines to this file")
    parser.add_argument("--case", choices=["recall", "kernel", "store"], help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help="folder for the stores' files (default: the system's temporary folder)")
    args = parser.parse_args()
    if args.case is None:
        return parent(args)
    case = {"recall": recall_case, "kernel": kernel_case, "store": store_case}[args.case]
    for line in case(args):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()

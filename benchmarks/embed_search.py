"""Embedding throughput through `sal_tf.load_model`'s Embedder, and gallery search latency / memory.

    python benchmarks/embed_search.py --output=benchmarks/results/embed_search_cpu_2core.jsonl
    python benchmarks/embed_search.py --sizes=100000 --presets=tiny     # a quick run

One JSON line per case, each case in its own child process (so `peak_rss_mib` is that case's
peak resident memory, `ru_maxrss`):

* `embed`: images/s at batch 32 (random weights): `keras` (a `.keras` file via `load_model`, float32
  batches at the model size), `saved_model` (tiny: the exported SavedModel via `load_model`), `files`
  (tiny: `embed_paths` over 128x64 JPEG files: read, decode, resize, embed).
* `search`: a gallery of N random 1024-d unit vectors indexed through `GalleryIndex` (added in
  chunks), then queries in batches of 100: `flat` (faiss exact inner product), `ivf` (IVF cells +
  4-bit PQ fast-scan + exact re-scoring, `sal_tf.gallery.faiss_index`), `ivf_flat` (IndexIVFFlat; up
  to --ivf_flat_max), both with nlist = sqrt(N) trained on 64·nlist sampled rows, one line per
  nprobe; `numpy` (brute force: [100, 65536] matrix products over the gallery, a running top 10).
  Latency is ms per query (median batch time / 100); `recall_at_10` is against the flat index's
  top 10 (for numpy: agreement).
  Galleries: `clustered` (re-ID like: N/10 identities of 10 images each; identity centres and
  their images' spread live in a random 64-d subspace, as most of a CNN embedding's variance
  does, plus isotropic noise in all 1024 dimensions) and, for IVF's worst case, `uniform` (no
  structure at all). Queries of the clustered gallery are new images of random identities.

Timings are wall-clock on a machine that may be shared: compare ratios within one run
(`speedup_vs_flat` on the IVF lines is computed from the same run's flat line).
"""

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from benchmarks.json_lines import JsonLines, child_lines, machine_line, peak_rss_mib  # noqa: E402

DIM = 1024
LATENT = 64  # clustered gallery: identities live in a 64-d subspace, as CNN embeddings mostly do
BATCH = 100  # queries per search call
IDS_PER_BLOCK = 1000  # identities generated together (10 000 gallery rows)
IMAGES_PER_ID = 10
WITHIN_ID = 0.5  # latent spread of one identity's images around its centre
OFF_SUBSPACE = 0.3  # isotropic noise in all 1024 dimensions
NPROBES = (16, 32, 64, 128)


# ------------------------------------------------------------------ data
def _unit(x):
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _basis(seed):
    return np.linalg.qr(np.random.default_rng([seed, 0]).standard_normal((DIM, LATENT)))[0].astype(np.float32)


def _centres(block, seed):
    """Unit latent centres [IDS_PER_BLOCK, LATENT] of identities block·1000 ... block·1000 + 999."""
    return _unit(np.random.default_rng([seed, 1, block]).standard_normal((IDS_PER_BLOCK, LATENT), np.float32))


def _images(centres, rng, seed):
    """Unit 1024-d images of identities with latent `centres` [n, LATENT]."""
    latent = centres + WITHIN_ID / np.sqrt(LATENT) * rng.standard_normal(centres.shape, np.float32)
    x = latent @ _basis(seed).T
    x += OFF_SUBSPACE / np.sqrt(DIM) * rng.standard_normal(x.shape, np.float32)
    return _unit(x)


def gallery_blocks(n, kind, seed=0):
    """Yields (first row, unit vectors [<= 10 000, DIM]) blocks of the gallery, deterministically."""
    rows = IDS_PER_BLOCK * IMAGES_PER_ID
    for block in range((n + rows - 1) // rows):
        count = min(rows, n - block * rows)
        rng = np.random.default_rng([seed, 2, block])
        if kind == "uniform":
            yield block * rows, _unit(rng.standard_normal((count, DIM), np.float32))
        else:
            yield block * rows, _images(_centres(block, seed)[np.arange(count) // IMAGES_PER_ID], rng, seed)


def queries(n, count, kind, seed=0):
    """Query unit vectors [count, DIM]: new images of random gallery identities (clustered)."""
    rng = np.random.default_rng([seed, 3])
    if kind == "uniform":
        return _unit(rng.standard_normal((count, DIM), np.float32))
    ids = rng.integers(0, n // IMAGES_PER_ID, count)
    centres = np.empty((count, LATENT), np.float32)
    for block in np.unique(ids // IDS_PER_BLOCK):
        pick = ids // IDS_PER_BLOCK == block
        centres[pick] = _centres(block, seed)[ids[pick] % IDS_PER_BLOCK]
    return _images(centres, rng, seed)


def train_sample(n, count, kind, seed=0):
    """About `count` random gallery rows (for IVF training), drawn block by block."""
    rng = np.random.default_rng([seed, 4])
    parts = [x[rng.random(len(x)) < count / n] for _, x in gallery_blocks(n, kind, seed)]
    return np.concatenate(parts)


# ------------------------------------------------------------------ cases (child side)
def _batch_times(search, q):
    times, found = [], []
    for s in range(0, len(q), BATCH):
        start = time.perf_counter()
        found.append(search(q[s : s + BATCH]))
        times.append(time.perf_counter() - start)
    return np.concatenate(found), 1000 * float(np.median(times)) / BATCH, 1000 * float(np.mean(times)) / BATCH


def search_case(args):
    from sal_tf.gallery.faiss_index import GalleryIndex, default_nlist

    n, kind, method = args.size, args.gallery, args.method
    q = queries(n, args.queries, kind)
    truth_file = os.path.join(args.tmp, f"truth_{n}_{kind}.npy")
    base = {"benchmark": "search", "method": method, "gallery": kind, "size": n, "dim": DIM, "batch": BATCH}
    base["queries"] = len(q)
    start = time.perf_counter()
    if method == "numpy":
        gallery = np.empty((n, DIM), np.float32)
        for first, x in gallery_blocks(n, kind):
            gallery[first : first + len(x)] = x

        def search(batch, chunk=65536):
            best_ip = np.full((len(batch), 0), -np.inf, np.float32)
            best = np.zeros((len(batch), 0), np.int64)
            for s in range(0, n, chunk):  # one [100, chunk] product at a time; keep the running top 10
                ip = np.concatenate([best_ip, batch @ gallery[s : s + chunk].T], axis=1)
                rows = np.concatenate(
                    [best, np.broadcast_to(np.arange(s, min(s + chunk, n)), (len(batch), ip.shape[1] - best.shape[1]))],
                    axis=1,
                )
                top = np.argpartition(-ip, 9, axis=1)[:, :10]
                best_ip, best = np.take_along_axis(ip, top, axis=1), np.take_along_axis(rows, top, axis=1)
            order = np.argsort(-best_ip, axis=1, kind="stable")
            return np.take_along_axis(best, order, axis=1)

        build = time.perf_counter() - start
        found, ms, ms_mean = _batch_times(search, q)
        lines = [dict(base, build_s=round(build, 2), ms_per_query=round(ms, 3), ms_per_query_mean=round(ms_mean, 3))]
        lines[0]["recall_at_10"] = _recall(found, truth_file)
    else:
        nlist = default_nlist(n)
        train = train_sample(n, 64 * nlist, kind) if method != "flat" else None
        index = GalleryIndex.create(DIM, method, train, nlist=nlist, capacity=n)
        del train
        for first, x in gallery_blocks(n, kind):
            index.add(x, [f"g/{first + i:07d}.jpg" for i in range(len(x))])
        build = time.perf_counter() - start
        lines = []
        for nprobe in NPROBES if method != "flat" else (None,):
            found, ms, ms_mean = _batch_times(lambda b, p=nprobe: index.search(b, 10, nprobe=p)[1], q)
            line = dict(base, build_s=round(build, 2), ms_per_query=round(ms, 3), ms_per_query_mean=round(ms_mean, 3))
            if method == "flat":
                np.save(truth_file, found)
            else:
                line.update(nprobe=nprobe, recall_at_10=_recall(found, truth_file), factory=index.info["factory"])
            lines.append(line)
    import faiss

    for line in lines:
        line.update(threads=faiss.omp_get_max_threads(), peak_rss_mib=peak_rss_mib())
    return lines


def _recall(found, truth_file):
    if not os.path.exists(truth_file):
        return None
    truth = np.load(truth_file)
    return round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])), 4)


def _throughput(fn, calls, batch):
    fn()  # warm-up (tracing)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(batch / float(np.median(times)), 2), round(batch / min(times), 2)


def embed_case(args):
    import tensorflow as tf

    import sal_tf
    from sal_tf.inference import embedder, embedding_files
    from sal_tf.models import build_model

    preset, batch = args.preset, 32
    model = build_model(preset, num_classes=751, verbose=False)
    lines = []
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, *model.image_size, 3)).astype(np.float32))
    calls = 8 if preset == "tiny" else 2
    if preset == "tiny":
        path = os.path.join(args.tmp, "tiny.keras")
        model.save(path)
        runtimes = {"keras": sal_tf.load_model(path)}
        from sal_tf.export import export_lib

        exported = export_lib.export(model, os.path.join(args.tmp, "exports"), "tiny", verify=False)
        runtimes["saved_model"] = sal_tf.load_model(exported["saved_model"])
    else:
        runtimes = {"keras": embedder.KerasEmbedder(model, source="build_model('paper')")}
    for runtime, emb in runtimes.items():
        median, best = _throughput(lambda e=emb: e.embed_batch(x), calls, batch)
        lines.append({"runtime": runtime, "images_per_s": median, "images_per_s_best": best})
    if preset == "tiny":
        files = _jpeg_files(os.path.join(args.tmp, "jpegs"), 256)
        median, best = _throughput(
            lambda: embedding_files.embed_paths(runtimes["keras"], files, batch_size=batch, progress=False),
            2,
            len(files),
        )
        lines.append({"runtime": "files", "images_per_s": median, "images_per_s_best": best, "files": len(files)})
    for line in lines:
        line.update(benchmark="embed", preset=preset, batch=batch, image_size=list(model.image_size))
        line.update(peak_rss_mib=peak_rss_mib())
    return lines


def _jpeg_files(folder, count):
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        paths.append(os.path.join(folder, f"{i:04d}_c1s1_000001_01.jpg"))
        pixels = rng.integers(0, 256, (128, 64, 3)).astype(np.uint8)
        tf.io.write_file(paths[-1], tf.io.encode_jpeg(pixels, quality=90))
    return paths


# ------------------------------------------------------------------ parent
def child(case_args, tmp):
    return child_lines([sys.executable, os.path.abspath(__file__), "--tmp", tmp, *case_args], case_args)


def cases(args):
    for preset in args.presets:
        yield ["--case=embed", f"--preset={preset}"]
    for size in args.sizes:
        for method in ("flat", "ivf", "ivf_flat", "numpy"):
            if method != "ivf_flat" or size <= args.ivf_flat_max:
                yield ["--case=search", f"--size={size}", "--gallery=clustered", f"--method={method}"]
        if size <= 100_000:
            for method in ("flat", "ivf"):
                yield ["--case=search", f"--size={size}", "--gallery=uniform", f"--method={method}"]


def parent(args):
    out = JsonLines(args.output)
    note = "shared machine: compare ratios within this run"
    out.emit(machine_line("embed_search_setup", ("faiss", "numpy"), queries=args.queries, note=note))
    flat_ms = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case_args in cases(args):
            for line in child([*case_args, f"--queries={args.queries}"], tmp):
                if line.get("method") == "flat":
                    flat_ms[(line["size"], line["gallery"])] = line["ms_per_query"]
                if line.get("method") in ("ivf", "ivf_flat", "numpy") and (line["size"], line["gallery"]) in flat_ms:
                    line["speedup_vs_flat"] = round(flat_ms[(line["size"], line["gallery"])] / line["ms_per_query"], 2)
                out.emit(line)
    out.save()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", type=lambda s: s.split(","), default=["tiny", "paper"])
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=500, help="queries per search case (batches of 100)")
    parser.add_argument("--output", help="also write the JSON lines to this file")
    parser.add_argument("--ivf_flat_max", type=int, default=100_000, help="largest gallery timed with ivf_flat")
    parser.add_argument("--case", choices=["embed", "search"], help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gallery", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is None:
        return parent(args)
    for line in (embed_case if args.case == "embed" else search_case)(args):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()

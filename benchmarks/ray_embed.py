"""`sal-embed --engine=ray` against the plain path: images/s with 1 and 2 Ray workers, equality, a killed worker.

    nice -n 10 python benchmarks/ray_embed.py --model=runs/demo --images=~/.cache/sal_tf/demo/.../bounding_box_test

One JSON line per case: `plain` (`embedding_files.embed_images` in this process), `ray` with
--workers actors (a local Ray instance of that many CPUs, started and shut down per case; its
start-up and the actors' model loading are in `wall_s`, not in `images_per_s`, which counts from
the first finished batch), and `ray_killed` (1 worker, SIGKILLed after its first batch: Ray restarts
it; `lost` / `twice` must be 0). Every Ray case reports `max_abs_diff` against the plain path and
whether the paths match (same files, same order).
"""

import argparse
import json
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def ray_case(args, images, plain, workers, kill=False):
    import ray

    from sal_tf.inference import ray_embed

    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray_embed.job(images.paths, args.model, args.batch_size, workers=workers)
        batches, first, killed = [], None, []
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            batches.append(batch)
            first = first or time.perf_counter()
            if kill and not killed:
                killed = sorted(ray_embed.worker_pids())
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
        end = time.perf_counter()
    finally:
        ray.shutdown()
    rows = ray_embed.collect(batches)
    position = rows["position"].astype(np.int64)
    counts = np.bincount(position, minlength=len(images.paths))
    emb, kept, _ = ray_embed.gather(rows, images.paths)
    done = len(rows["position"]) - len(batches[0]["position"])
    return {
        "benchmark": "ray_embed",
        "case": "ray_killed" if kill else "ray",
        "workers": workers,
        "images": len(images.paths),
        "images_per_s": round(done / max(end - first, 1e-9), 1),
        "wall_s": round(end - start, 1),
        "killed_workers": len(killed),
        "lost": int(np.sum(counts == 0)),
        "twice": int(np.sum(counts > 1)),
        "same_paths": [images.paths[i] for i in kept] == plain.paths,
        "max_abs_diff": float(np.abs(emb - plain.embeddings).max()) if len(emb) else 0.0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", required=True, help="a folder, glob or CSV (sal-embed --images)")
    parser.add_argument("--limit", type=int, default=2000, help="first N images")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--workers", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    parser.add_argument("--output", help="also append the JSON lines to this file")
    args = parser.parse_args()
    from sal_tf.inference import embedding_files, loading, sources

    images = sources.list_images(os.path.expanduser(args.images))
    images.paths = images.paths[: args.limit]
    images.pids = images.camids = None
    start = time.perf_counter()
    embedder = loading.load_embedder(args.model)
    loaded = time.perf_counter()
    plain = embedding_files.embed_images(embedder, images, args.batch_size, progress=False)
    end = time.perf_counter()
    lines = [
        {
            "benchmark": "ray_embed",
            "case": "plain",
            "images": len(images.paths),
            "images_per_s": round(len(plain.paths) / (end - loaded), 1),
            "wall_s": round(end - start, 1),
        }
    ]
    lines += [ray_case(args, images, plain, w) for w in args.workers]
    lines.append(ray_case(args, images, plain, 1, kill=True))
    for line in lines:
        print(json.dumps(line), flush=True)
        if args.output:
            with open(args.output, "a") as f:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()

"""Embedding on Ray: the `embed` command's images as a Ray Data job (`sal-embed --engine=ray`).

    from sal_tf.inference import ray_embed, sources
    result = ray_embed.embed_images("runs/market", sources.list_images("cams/"), workers=2)
    # result: the same `embedding_files.Embeddings` as embedding_files.embed_images (same paths, same order)

The paths become a Ray Dataset (`ray.data.from_items`, one row per image with its position);
`map_batches` runs `_EmbedWorker`, a callable class in a fixed-size actor pool
(`ActorPoolStrategy(size=workers)`): each actor loads the model once (`loading.load_embedder`),
decodes and resizes each file as the plain path does (`sal_tf.data.pipelines.load_image`) and
embeds the decodable ones with `embed_batch`; an undecodable file comes back marked, to be listed
as skipped. Rows are gathered and put back in path order by their position.

Failures: an actor that dies (killed, out of memory, its machine lost) is restarted by Ray and the
batches it held are run again (Ray Data's actor pools default to `max_restarts=-1`,
`max_task_retries=-1`); a batch's output counts only once its task finished, and `gather` checks
that every position came back exactly once (no image lost, none embedded twice), else raises.

Where: a local Ray instance started here (`ray.init(num_cpus=workers)`, shut down at the end) by
default, or an existing cluster (`address="ray://head:10001"` or `"auto"`, BUILD.md "Embedding on
Ray"); every worker must read the image paths and the model (a shared file system, or object
storage paths that TensorFlow reads).
"""

import os

import numpy as np

from sal_tf.inference.embedding_files import Embeddings


class _EmbedWorker:
    """One Ray actor: the model loaded once, then batches of {"position", "path"} rows embedded."""

    def __init__(self, model, flip, threads, precision="float32"):
        from sal_tf.inference import loading

        self.embedder = loading.load_embedder(model, threads=threads, precision=precision)
        self.flip = flip

    def __call__(self, batch):
        import tensorflow as tf

        from sal_tf.data import pipelines

        images, ok = [], np.zeros(len(batch["path"]), bool)
        for i, path in enumerate(batch["path"]):
            try:
                images.append(pipelines.load_image(tf.constant(str(path)), self.embedder.image_size).numpy())
                ok[i] = True
            except (tf.errors.OpError, ValueError):
                pass  # listed as skipped, as the plain path's ignore_errors does
        dim = self.embedder.embedding_dim
        emb = np.zeros((len(ok), dim), np.float32)
        if images:
            emb[ok] = self.embedder.embed_batch(np.stack(images), self.flip)
        return {"position": np.asarray(batch["position"], np.int64), "ok": ok, "embedding": emb}


def embed_images(
    model,
    images,
    batch_size=32,
    flip=False,
    workers=1,
    address=None,
    threads=None,
    worker_cpus=1,
    progress=False,
    precision="float32",
):
    """`Embeddings` of a `sources.ImageList`, computed by a Ray Data job (module docstring).

    Args:
        model: what `loading.load_embedder` opens, readable by every worker.
        workers: actors in the pool (model copies at once).
        address: a Ray cluster to join (`ray.init(address=...)`); None: a local instance of
            `workers` × `worker_cpus` CPUs, started and shut down here.
        threads: the model runtime's threads in each actor; worker_cpus: CPUs Ray reserves per actor.
        precision: "float32" or "bfloat16" (`sal_tf.inference.forms.open_backend`).
    """
    import ray

    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1. Received: {batch_size}")
    if workers < 1:
        raise ValueError(f"--ray_workers must be >= 1. Received: {workers}")
    paths = [os.fspath(p) for p in images.paths]
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers * worker_cpus, include_dashboard=False, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = bool(progress)
        ds = job(paths, model, batch_size, flip, workers, threads, worker_cpus, precision)
        rows = collect(ds.iter_batches(batch_size=None, batch_format="numpy"))
    finally:
        if started:
            ray.shutdown()
    emb, kept, skipped = gather(rows, paths)
    pick = None if images.pids is None else (lambda ids: np.asarray(ids, np.int64)[kept])
    return Embeddings(
        embeddings=emb,
        paths=[paths[i] for i in kept],
        pids=None if pick is None else pick(images.pids),
        camids=None if pick is None else pick(images.camids),
        skipped=skipped,
        model=str(model),
        flip=bool(flip),
    )


def job(paths, model, batch_size=32, flip=False, workers=1, threads=None, worker_cpus=1, precision="float32"):
    """The Ray Dataset of the job (lazy; Ray must be initialised): rows {"position", "ok", "embedding"}."""
    import ray

    ds = ray.data.from_items([{"position": i, "path": p} for i, p in enumerate(paths)])
    return ds.map_batches(
        _EmbedWorker,
        fn_constructor_kwargs={"model": model, "flip": bool(flip), "threads": threads, "precision": precision},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=worker_cpus,
    )


def collect(batches):
    """One dict of arrays of the job's output `batches` (an iterable of numpy batches)."""
    out = {"position": [], "ok": [], "embedding": []}
    for batch in batches:
        for key in out:
            out[key].append(batch[key])
    return {key: np.concatenate(parts) if parts else np.zeros(0) for key, parts in out.items()}


def worker_pids():
    """Process ids of this machine's embedding actors (their command lines name `_EmbedWorker`)."""
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if _EmbedWorker.__name__.encode() in f.read():
                    pids.add(int(pid))
        except OSError:
            pass  # the process ended meanwhile
    return pids


def gather(rows, paths):
    """(embeddings [n, D] in path order, positions embedded, skipped paths) of the job's rows;
    RuntimeError when a position is missing or came back twice."""
    position = np.asarray(rows["position"], np.int64)
    counts = np.bincount(position, minlength=len(paths)) if len(position) else np.zeros(len(paths), np.int64)
    if len(counts) != len(paths) or (counts != 1).any():
        lost, twice = int(np.sum(counts[: len(paths)] == 0)), int(np.sum(counts > 1))
        raise RuntimeError(
            f"The Ray job returned {len(position)} rows for {len(paths)} images: {lost} lost, {twice} twice."
        )
    order = np.argsort(position, kind="stable")
    ok = np.asarray(rows["ok"], bool)[order]
    emb = np.asarray(rows["embedding"], np.float32)[order][ok] if len(order) else np.zeros((0, 0), np.float32)
    kept = np.flatnonzero(ok)
    return emb, kept, [p for p, good in zip(paths, ok) if not good]

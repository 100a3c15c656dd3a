"""Embedding on Ray (sal_tf/inference/ray_embed.py) on one local Ray instance for the module: the same
output as the plain path, and a worker killed with SIGKILL mid-job restarted with nothing lost."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from sal_tf.inference import ray_embed
from tests.conftest import tiny_model

ray = pytest.importorskip("ray")  # requirements-ray.txt

pytestmark = pytest.mark.slow  # Ray's start and one model per actor: ~40 s on 2 cores


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(model file, ImageList of 60 images + an undecodable one, the plain path's Embeddings), Ray started."""
    from PIL import Image

    from sal_tf.inference import embedding_files, loading, sources

    root = tmp_path_factory.mktemp("ray")
    rng = np.random.default_rng(0)
    for i in range(60):
        pixels = rng.integers(0, 256, (48 + i % 9, 24 + i % 5, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"{i:04d}_c{i % 3 + 1}s1_000001_00.jpg")
    (root / "0099_c1s1_000001_00.jpg").write_bytes(b"not an image")
    model = str(root / "model.keras")
    tiny_model(10).save(model)
    images = sources.list_images(str(root))
    plain = embedding_files.embed_images(loading.load_embedder(model), images, 8, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield model, images, plain
    ray.shutdown()
    deadline = time.monotonic() + 20  # workers exit on their own shortly after the shutdown
    while ray_embed.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ray_embed.worker_pids(), "a Ray worker process outlived ray.shutdown()"


def test_sal_embed_engine_ray_writes_the_plain_paths_file(setup, tmp_path):
    """`sal-embed --engine=ray --ray_workers=2` (its own local Ray instance) against the plain path's .npz."""
    import sys

    from sal_tf.inference import embedding_files
    from tests.conftest import run_cmd

    model, images, plain = setup
    folder = os.path.dirname(images.paths[0])
    cmd = [sys.executable, "-m", "sal_tf.cli.embed", f"--model={model}", f"--images={folder}", "--output=r.npz"]
    out = run_cmd([*cmd, "--engine=ray", "--ray_workers=2", "--batch_size=8"], cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Embedded 60 of 61 images" in out.stdout and "2 Ray worker(s)" in out.stderr
    result = embedding_files.load_npz(str(tmp_path / "r.npz"))
    assert result.paths == plain.paths
    assert result.skipped == plain.skipped == [images.paths[-1]]
    np.testing.assert_array_equal(result.pids, plain.pids)
    np.testing.assert_allclose(result.embeddings, plain.embeddings, rtol=0, atol=1e-5)


def test_a_killed_worker_is_restarted_and_no_image_is_lost_or_repeated(setup):
    model, images, plain = setup
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.update(ray_embed.worker_pids())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    killed = []
    batches = []
    ds = ray_embed.job(images.paths, model, batch_size=2, workers=1)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            batches.append(batch)
            if not killed:  # the first batch is out: the one actor is mid-job
                killed = sorted(ray_embed.worker_pids())
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
    finally:
        stop.set()
        watcher.join()
    assert killed, "no worker process to kill"
    assert set(seen) - set(killed), "Ray started no new worker after the kill"
    emb, kept, skipped = ray_embed.gather(ray_embed.collect(batches), images.paths)
    assert [images.paths[i] for i in kept] == plain.paths and skipped == plain.skipped
    np.testing.assert_allclose(emb, plain.embeddings, rtol=0, atol=1e-5)


def test_gather_refuses_a_lost_or_repeated_image():
    rows = {"position": np.array([0, 2, 2]), "ok": np.ones(3, bool), "embedding": np.zeros((3, 4), np.float32)}
    with pytest.raises(RuntimeError, match="1 lost, 1 twice"):
        ray_embed.gather(rows, ["a", "b", "c"])

"""`--engine`: where `sal-embed` and `sal-search add` embed images: in this process, or as a Ray Data job.

    sal-embed --model=runs/demo --images=archive/ --output=archive.npz --engine=ray --ray_workers=2
    sal-embed ... --engine=ray --ray_address=ray://head:10001        # a Ray cluster (BUILD.md "Embedding on Ray")

The Ray engine is `sal_tf/inference/ray_embed.py` (requirements-ray.txt); both engines give the same
`Embeddings` (same paths in the same order, embeddings equal to ~1e-6).
"""

import sys

from absl import flags

from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS
ENGINES = ("local", "ray")


def define_flags():
    """The embedding job's flags, the same on every command that embeds images (called by its `define_flags`)."""
    flags.DEFINE_integer("batch_size", 32, "Images per model call when embedding.")
    flags.DEFINE_bool("flip", False, "Average each image's embedding with its mirror's (as --flip_eval).")
    flags.DEFINE_bool("progress", True, "Show a progress bar on stderr while embedding.")
    flags.DEFINE_enum("engine", "local", list(ENGINES), "Embed in this process (local) or as a Ray Data job (ray).")
    flags.DEFINE_string(
        "ray_address", None, "--engine=ray: the Ray cluster to join (ray://head:10001 or auto); default: a local Ray."
    )
    flags.DEFINE_integer("ray_workers", 1, "--engine=ray: model copies (Ray actors) embedding at once.")


def embed_images(model, images, batch_size, flip, progress, threads=None, precision="float32"):
    """`embedding_files.Embeddings` of a `sources.ImageList`, by the engine --engine names."""
    if FLAGS.engine == "ray":
        from sal_tf.inference import ray_embed

        try:
            import ray  # noqa: F401
        except ImportError:
            raise sal_app.UserError(
                "--engine=ray needs Ray: pip install 'sal-tf[ray]' (or -r requirements-ray.txt)."
            ) from None
        if FLAGS.ray_workers < 1:
            raise sal_app.UserError(f"--ray_workers must be >= 1. Received: {FLAGS.ray_workers}")
        where = FLAGS.ray_address or "a local Ray instance"
        print(f"Model: {model}, embedded by {FLAGS.ray_workers} Ray worker(s) on {where}", file=sys.stderr)
        return ray_embed.embed_images(
            model,
            images,
            batch_size,
            flip,
            FLAGS.ray_workers,
            FLAGS.ray_address,
            threads,
            progress=progress,
            precision=precision,
        )
    from sal_tf.inference import embedding_files, loading

    embedder = loading.load_embedder(model, threads=threads, precision=precision)
    print(f"Model: {embedder.describe()}", file=sys.stderr)
    return embedding_files.embed_images(embedder, images, batch_size, flip, progress)

"""`sal-search index`: a gallery built once into an index folder (`sal_tf.gallery.faiss_index`)."""

from absl import flags

from sal_tf.cli.search import inputs
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def build():
    from sal_tf.gallery.faiss_index import INDEX_KINDS, GalleryIndex

    kind = FLAGS.index or "flat"
    if kind not in INDEX_KINDS:
        raise sal_app.UserError(f"index: --index must be one of {', '.join(INDEX_KINDS)}. Received: {kind!r}")
    if bool(FLAGS.embeddings) == bool(FLAGS.images):
        raise sal_app.UserError("index: give exactly one of --embeddings=FILE.npz or --images=... with --model.")
    gallery = inputs.embeddings(FLAGS.embeddings or FLAGS.images, FLAGS.model, "--images")
    index = GalleryIndex.build(
        gallery.embeddings,
        gallery.paths,
        gallery.pids,
        gallery.camids,
        kind=kind,
        nlist=FLAGS.nlist,
        nprobe=FLAGS.nprobe,
        distance=FLAGS.distance,
        source=FLAGS.embeddings or FLAGS.images,
        model=gallery.model,
    )
    index.save(FLAGS.index_dir, overwrite=FLAGS.overwrite)
    print(f"Indexed {len(index)} gallery embeddings ({index.info['dim']}-d, {index.info['kind']}) -> {FLAGS.index_dir}")

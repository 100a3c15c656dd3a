"""Embeds images with a trained model into one `.npz` (see `sal_tf.inference.embedding_files`).

    python -m sal_tf.cli.embed --model=runs/market --images=photos/ --output=photos.npz
    python -m sal_tf.cli.embed --model=exports/sal/1 --images='cams/**/*.jpg' --output=cams.npz --flip
    python -m sal_tf.cli.embed --model=stage2.keras --images=data/query.csv --output=query.npz

--model: a training --model_dir, a .keras file, an exported SavedModel folder, an .onnx or a .tflite
file (a folder holding several: the fastest form, printed; `sal_tf/inference/backend.py`). --images: a
folder (recursively), a glob pattern or a CSV with the header path,person_id,camera_id.
Undecodable files are skipped and listed. An existing --output is kept unless --overwrite.
"""

from absl import flags

from sal_tf.cli import engine, runtime_flags
from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    flags.DEFINE_string("model", None, "A training --model_dir, .keras, SavedModel folder, .onnx or .tflite file.")
    runtime_flags.define_runtime_flags()
    flags.DEFINE_string("images", None, "A folder (recursive), a glob pattern, or a CSV (path,person_id,camera_id).")
    flags.DEFINE_string("output", None, "The .npz to write (embeddings, paths, pids/camids, skipped).")
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")
    engine.define_flags()
    flags.adopt_module_key_flags(engine)  # --help lists the embedding flags with this command's own


def main(argv):
    sal_app.no_arguments(argv)
    sal_app.require_flags("model", "images", "output")
    sal_app.check_new_output("output", ".npz", FLAGS.overwrite)
    from sal_tf.inference import embedding_files, sources

    images = sources.list_images(FLAGS.images)
    result = engine.embed_images(
        FLAGS.model, images, FLAGS.batch_size, FLAGS.flip, FLAGS.progress, FLAGS.threads, FLAGS.precision
    )
    embedding_files.save_npz(FLAGS.output, result, overwrite=FLAGS.overwrite)
    ids = f"ids from {images.ids_from}" if result.pids is not None else "no ids (file names do not all parse)"
    print(
        f"Embedded {len(result.paths)} of {len(images.paths)} images with {result.model} "
        f"({result.embeddings.shape[1]}-d, {ids}) -> {FLAGS.output}"
    )
    if result.skipped:
        print(f"Skipped {len(result.skipped)} unreadable or undecodable file(s):")
        for path in result.skipped:
            print(f"  {path}")


def run():
    """Console-script entry point."""
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

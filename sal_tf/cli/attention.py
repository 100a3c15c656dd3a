"""Draws the attention maps (paper Fig. 3) of chosen images with a trained model, as a PNG.

    python -m sal_tf.cli.attention --model=runs/market --images=photos/ --output=attention.png [--count=4]

--model: a training --model_dir or a .keras file (a SavedModel holds no attention maps).
--images: a folder, glob, CSV or one image; the first --count files are drawn (undecodable ones skipped).
"""

from absl import flags

from sal_tf.utils import app as sal_app

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (called by `run`, never at import)."""
    flags.DEFINE_string("model", None, "A training --model_dir or a .keras file.")
    flags.DEFINE_string("images", None, "Images to draw: a folder, a glob pattern, a CSV or one image file.")
    flags.DEFINE_string("output", None, "The PNG to write.")
    flags.DEFINE_integer("count", 4, "How many of the images to draw (the first ones, in path order).")
    flags.DEFINE_float("alpha", 0.5, "Opacity of the heat maps.")


def main(argv):
    sal_app.no_arguments(argv)
    sal_app.require_flags("model", "images", "output")
    if FLAGS.count < 1:
        raise sal_app.UserError(f"--count must be >= 1. Received: {FLAGS.count}")
    from sal_tf.inference import loading, pictures, sources

    paths = sources.list_images(FLAGS.images).paths[: FLAGS.count]
    embedder = loading.load_embedder(FLAGS.model, form="keras")  # attention maps: the Keras form
    image, drawn = pictures.attention_picture(embedder, paths, FLAGS.output, alpha=FLAGS.alpha)
    print(f"Attention maps of {len(drawn)} image(s) ({image.shape[1]}x{image.shape[0]} px) -> {FLAGS.output}")
    skipped = [p for p in paths if p not in drawn]
    if skipped:
        print(f"Skipped {len(skipped)} unreadable or undecodable file(s): {', '.join(skipped)}")


def run():
    """Console-script entry point."""
    define_flags()
    sal_app.run(main)


if __name__ == "__main__":
    run()

"""Train SAL on DukeMTMC-reID (or, with no --data_dir, on the generated demo dataset).

python -m trainers.duke --data_dir=/data/DukeMTMC-reID --stage=all
"""

from absl import flags

from sal_tf.training import cli_flags
from sal_tf.utils import app

cli_flags.define_reid_flags(default_dataset="dukemtmc")
flags.adopt_module_key_flags(cli_flags)  # `--help` lists the training flags


def main(argv):
    from sal_tf.training.commands import train_reid

    app.no_arguments(argv)
    train_reid(cli_flags.reid_config_from_flags(), demo_cache_dir=flags.FLAGS.demo_cache_dir)


def run():
    """Console script `sal-train-duke`."""
    app.run(main)


if __name__ == "__main__":
    run()

"""Train SAL on Market-1501 (or, with no --data_dir, on the generated demo dataset).

python -m trainers.market                               # demo: tiny preset, stage 1 + 2, evaluation
python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=1
python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=2
"""

from absl import flags

from sal_tf.training import cli_flags
from sal_tf.utils import app

cli_flags.define_reid_flags(default_dataset="market1501")
flags.adopt_module_key_flags(cli_flags)  # `--help` lists the training flags


def main(argv):
    from sal_tf.training.commands import train_reid

    app.no_arguments(argv)
    train_reid(cli_flags.reid_config_from_flags(), demo_cache_dir=flags.FLAGS.demo_cache_dir)


def run():
    """Console script `sal-train-market`."""
    app.run(main)


if __name__ == "__main__":
    run()

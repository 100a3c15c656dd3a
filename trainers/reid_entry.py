"""The body of `trainers.market` / `trainers.duke`: re-ID flags → `TrainConfig` → `train_reid`."""

from absl import flags

from sal_tf.training import cli_flags
from sal_tf.utils import app


def define(default_dataset):
    """Defines the trainer's flags with `--dataset` defaulting to `default_dataset`."""
    cli_flags.define_reid_flags(default_dataset=default_dataset)


def main(argv):
    from sal_tf.training.commands import train_reid

    app.no_arguments(argv)
    train_reid(cli_flags.reid_config_from_flags(), demo_cache_dir=flags.FLAGS.demo_cache_dir)


def run(help_module):
    app.run(main, help_module=help_module)

"""Train SAL on Market-1501 (or, with no --data_dir, on the generated demo dataset).

    python -m trainers.market                               # demo: tiny preset, stage 1 + 2, evaluation
    python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=1
    python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=2

Console script: `sal-train-market`.
"""

from absl import flags

from sal_tf.training import cli_flags
from trainers import reid_entry

reid_entry.define(default_dataset="market1501")
flags.adopt_module_key_flags(cli_flags)  # `--help` lists the training flags


def run():
    """Console-script entry point."""
    reid_entry.run(help_module=__name__)


if __name__ == "__main__":
    run()

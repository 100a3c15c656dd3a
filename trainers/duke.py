"""Train SAL on DukeMTMC-reID (or, with no --data_dir, on the generated demo dataset).

    python -m trainers.duke --data_dir=/data/DukeMTMC-reID --stage=all

Console script: `sal-train-duke`.
"""

from absl import flags

from sal_tf.training import cli_flags
from trainers import reid_entry

reid_entry.define(default_dataset="dukemtmc")
flags.adopt_module_key_flags(cli_flags)  # `--help` lists the training flags


def run():
    """Console-script entry point."""
    reid_entry.run(help_module=__name__)


if __name__ == "__main__":
    run()

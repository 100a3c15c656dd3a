"""Run the Table 1 ablation (paper §4.3) and write table1.md / table1.json beside the paper's numbers.

    python -m trainers.ablation                                   # demo data, tiny preset, all 9 settings
    python -m trainers.ablation --settings=1,3,8 --model_dir=runs/ablation_demo
    python -m trainers.ablation --dataset=market --data_dir=/data/Market-1501-v15.09.15
    python -m trainers.ablation --dataset=duke --data_dir=/data/DukeMTMC-reID --settings=1,4,6,8

Every trainer flag applies to all settings (see --help); each setting trains in
<model_dir>/setting_<id>/ and a finished setting is not rerun.
"""

from absl import flags

from sal_tf.training import cli_flags
from sal_tf.utils import app

cli_flags.define_ablation_flags()
flags.adopt_module_key_flags(cli_flags)  # `--help` lists the trainer's flags


def main(argv):
    from sal_tf.training.ablation import parse_settings
    from sal_tf.training.commands import run_table1

    app.no_arguments(argv)
    settings = parse_settings(flags.FLAGS.settings)
    run_table1(cli_flags.ablation_config_from_flags(), settings, demo_cache_dir=flags.FLAGS.demo_cache_dir)


def run():
    """Console script `sal-train-ablation`."""
    app.run(main)


if __name__ == "__main__":
    run()

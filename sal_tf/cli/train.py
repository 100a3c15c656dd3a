"""The training commands: flags (`sal_tf.cli.train_flags`) → config → `sal_tf.training.commands`
(the paper's experiments: → `sal_tf.experiments`).

    python -m trainers.market [--data_dir=/data/Market-1501-v15.09.15] [--stage=1|2|all]   # sal-train-market
    python -m trainers.duke --data_dir=/data/DukeMTMC-reID                                  # sal-train-duke
    python -m trainers.cifar100 --data_dir=/data/cifar-100-python                           # sal-train-cifar100
    python -m trainers.ablation [--settings=1,3,8]                                           # sal-train-ablation
    python -m trainers.paper --data_root=/data                                              # sal-train-paper

Each function defines its command's flags when it is called (never at import) and runs it through
`sal_tf.utils.app.run` (one `error:` line and exit status 2 for a user's mistake).
"""

from absl import flags

from sal_tf.cli import train_flags
from sal_tf.utils import app

_HELP_MODULE = train_flags.__name__  # the module that defines the flags: `--help` lists its key flags


def _reid_main(argv):
    from sal_tf.training.commands import train_reid

    app.no_arguments(argv)
    train_reid(train_flags.reid_config_from_flags(), demo_cache_dir=flags.FLAGS.demo_cache_dir, seeds=flags.FLAGS.seeds)


def _cifar_main(argv):
    from sal_tf.training.commands import train_cifar

    app.no_arguments(argv)
    train_cifar(train_flags.cifar_config_from_flags())


def _ablation_main(argv):
    from sal_tf.experiments.ablation import parse_settings, run_table1

    app.no_arguments(argv)
    settings = parse_settings(flags.FLAGS.settings)
    run_table1(
        train_flags.ablation_config_from_flags(),
        settings,
        demo_cache_dir=flags.FLAGS.demo_cache_dir,
        seeds=flags.FLAGS.seeds,
    )


def _paper_main(argv):
    from sal_tf.experiments.paper_run import run_paper

    app.no_arguments(argv)
    config, data_dirs = train_flags.paper_config_from_flags()
    run_paper(config, data_dirs, num_seeds=flags.FLAGS.seeds)


def train_reid(default_dataset):
    """A re-ID trainer whose `--dataset` defaults to `default_dataset` (demo data without --data_dir)."""
    train_flags.define_reid_flags(default_dataset=default_dataset)
    app.run(_reid_main, help_module=_HELP_MODULE)


def market():
    """`python -m trainers.market` / `sal-train-market`: Market-1501 (or the demo), stages 1 and 2."""
    train_reid("market1501")


def duke():
    """`python -m trainers.duke` / `sal-train-duke`: DukeMTMC-reID."""
    train_reid("dukemtmc")


def cifar100():
    """`python -m trainers.cifar100` / `sal-train-cifar100`: Table 4 (paper §4.5)."""
    train_flags.define_cifar_flags()
    app.run(_cifar_main, help_module=_HELP_MODULE)


def ablation():
    """`python -m trainers.ablation` / `sal-train-ablation`: the Table 1 settings (paper §4.3)."""
    train_flags.define_ablation_flags()
    app.run(_ablation_main, help_module=_HELP_MODULE)


def paper():
    """`python -m trainers.paper` / `sal-train-paper`: the paper's Tables 2 and 3 (§4.4) in one command."""
    train_flags.define_paper_flags()
    app.run(_paper_main, help_module=_HELP_MODULE)

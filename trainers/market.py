"""Train SAL on Market-1501 (or, with no --data_dir, on the generated demo dataset).

python -m trainers.market                               # demo: tiny preset, stage 1 + 2, evaluation
python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=1
python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=2
"""

from absl import app, flags

from sal_tf.training import cli

cli.define_flags(default_dataset="market1501")
flags.adopt_module_key_flags(cli)  # `--help` lists the training flags

if __name__ == "__main__":
    app.run(cli.run)

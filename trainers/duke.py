"""Train SAL on DukeMTMC-reID (or, with no --data_dir, on the generated demo dataset).

python -m trainers.duke --data_dir=/data/DukeMTMC-reID --stage=all
"""

from absl import app, flags

from sal_tf.training import cli

cli.define_flags(default_dataset="dukemtmc")
flags.adopt_module_key_flags(cli)  # `--help` lists the training flags

if __name__ == "__main__":
    app.run(cli.run)

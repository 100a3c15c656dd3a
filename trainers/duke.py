"""Train SAL on DukeMTMC-reID (or, with no --data_dir, on the generated demo dataset).

    python -m trainers.duke --data_dir=/data/DukeMTMC-reID --stage=all
"""

from absl import app

from sal_tf.training import cli

cli.define_flags(default_dataset="dukemtmc")

if __name__ == "__main__":
    app.run(cli.run)

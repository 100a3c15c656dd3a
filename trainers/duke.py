"""Train SAL on DukeMTMC-reID (or, with no --data_dir, on the generated demo dataset).

    python -m trainers.duke --data_dir=/data/DukeMTMC-reID --stage=all

Thin entry point of `sal_tf.cli.train.duke` (console script `sal-train-duke`); `--help` lists every flag.
"""

from sal_tf.cli.train import duke

if __name__ == "__main__":
    duke()

"""Train SAL on Market-1501 (or, with no --data_dir, on the generated demo dataset).

    python -m trainers.market                               # demo: tiny preset, stage 1 + 2, evaluation
    python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=1
    python -m trainers.market --data_dir=/data/Market-1501-v15.09.15 --stage=2

Thin entry point of `sal_tf.cli.train.market` (console script `sal-train-market`); `--help` lists every flag.
"""

from sal_tf.cli.train import market

if __name__ == "__main__":
    market()

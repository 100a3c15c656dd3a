"""The paper's Tables 2 (Market-1501) and 3 (DukeMTMC-reID) in one command, beside the measured numbers.

    python -m trainers.paper --data_root=/data                       # finds Market-1501-v15.09.15/, DukeMTMC-reID/
    python -m trainers.paper --market_dir=/data/market --duke_dir=/data/duke --model_dir=runs/paper
    python -m trainers.paper --data_root=/data --datasets=market1501 --seeds=3

Each dataset trains with the paper preset, both stages (every trainer flag applies to both), is
evaluated with and without re-ranking, and <model_dir>/paper_tables.md / .json are rewritten after
each dataset. A finished dataset or stage is not retrained; an interrupted one resumes.

Thin entry point of `sal_tf.cli.train.paper` (console script `sal-train-paper`); `--help` lists every flag.
"""

from sal_tf.cli.train import paper

if __name__ == "__main__":
    paper()

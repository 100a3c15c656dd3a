"""Run the Table 1 ablation (paper §4.3) and write table1.md / table1.json beside the paper's numbers.

    python -m trainers.ablation                                   # demo data, tiny preset, all 9 settings
    python -m trainers.ablation --settings=1,3,8 --model_dir=runs/ablation_demo
    python -m trainers.ablation --dataset=market --data_dir=/data/Market-1501-v15.09.15
    python -m trainers.ablation --dataset=duke --data_dir=/data/DukeMTMC-reID --settings=1,4,6,8

Every trainer flag applies to all settings (see --help); each setting trains in
<model_dir>/setting_<id>/ and a finished setting is not rerun.

Thin entry point of `sal_tf.cli.train.ablation` (console script `sal-train-ablation`); `--help` lists every flag.
"""

from sal_tf.cli.train import ablation

if __name__ == "__main__":
    ablation()

"""Train the SAL network on CIFAR-100 and report the test error % (paper §4.5, Table 4).

    python -m trainers.cifar100 --data_dir=/data/cifar-100-python                 # Soft + DIL + SAC
    python -m trainers.cifar100 --data_dir=/data/cifar-100-python --nodilation --nosac \\
        --model_dir=runs/cifar100_soft                                             # ResNet50 (Soft)
    python -m trainers.cifar100 --data_dir=/data/cifar-100-python --nodilation --nosac --depth=101 \\
        --model_dir=runs/cifar100_r101                                             # ResNet101 (Soft)
    python -m trainers.cifar100 --width_divisor=8 --epochs=1 --max_steps_per_epoch=5 \\
        --max_eval_images=512 --model_dir=/tmp/cifar_smoke                         # smoke run

With no --data_dir the keras.datasets.cifar100 cache is used if it already holds the data.
Exit status: 0 done, 2 bad flags/data/model_dir, 3 the loss diverged.

Thin entry point of `sal_tf.cli.train.cifar100` (console script `sal-train-cifar100`); `--help` lists every flag.
"""

from sal_tf.cli.train import cifar100

if __name__ == "__main__":
    cifar100()

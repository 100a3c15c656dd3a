"""Train the SAL network on CIFAR-100 and report the test error % (paper §4.5, Table 4).

    python -m trainers.cifar100 --data_dir=/data/cifar-100-python                 # Soft + DIL + SAC
    python -m trainers.cifar100 --data_dir=/data/cifar-100-python --nodilation --nosac \
        --model_dir=runs/cifar100_soft                                             # plain ResNet50 (Soft)
    python -m trainers.cifar100 --width_divisor=8 --epochs=1 --max_steps_per_epoch=5 \
        --max_eval_images=512 --model_dir=/tmp/cifar_smoke                         # smoke run

With no --data_dir the keras.datasets.cifar100 cache is used if it already holds the data.
"""

from absl import app, flags

from sal_tf.training import cifar_trainer, cli

cifar_trainer.define_flags()
flags.adopt_module_key_flags(cifar_trainer)  # --help lists them
flags.adopt_module_key_flags(cli)  # the shared runtime flags (--strategy, --seed, ...)

if __name__ == "__main__":
    app.run(cifar_trainer.run)

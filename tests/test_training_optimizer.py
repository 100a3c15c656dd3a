"""The stages' optimiser (`sal_tf/training/optimizer.py`): PyTorch's coupled SGD update and Keras' decoupled one."""

import numpy as np
import pytest


def pytorch_sgd(w, grads, lr, momentum, weight_decay):
    """torch.optim.SGD(momentum=μ, weight_decay=wd, dampening=0, nesterov=False), written out."""
    w, buf = w.astype(np.float64).copy(), None
    for g in grads:
        d_p = g + weight_decay * w
        buf = d_p.copy() if buf is None else momentum * buf + d_p
        w = w - lr * buf
    return w


@pytest.mark.parametrize("lr", [0.1, 1e-3])
def test_coupled_weight_decay_is_the_pytorch_update(lr):
    import keras

    from sal_tf.training.optimizer import CoupledSGD

    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(5, 3)).astype(np.float32)
    grads = [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(6)]
    var = keras.Variable(w0)
    opt = CoupledSGD(learning_rate=lr, momentum=0.9, l2=5e-4)
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    np.testing.assert_allclose(var.numpy(), pytorch_sgd(w0, grads, lr, 0.9, 5e-4), rtol=0, atol=1e-6)


def steps(optimizer, variable, count):
    """A compiled loop of `count` zero-gradient steps (fast enough for a thousand)."""
    import tensorflow as tf

    @tf.function
    def run():
        for _ in tf.range(count):
            optimizer.apply_gradients([(tf.zeros_like(variable), variable)])

    return run


def test_coupled_decay_is_about_ten_times_the_decoupled_one():
    """Zero loss gradient, lr 0.1, momentum 0.9, 1000 steps: PyTorch's L2 shrinks w to ~0.61, Keras' to ~0.95."""
    import dataclasses

    import keras

    from sal_tf.training.config import StageConfig
    from sal_tf.training.optimizer import build_optimizer

    base = StageConfig(epochs=1, learning_rate=0.1, decay_every_epochs=10**6)
    shrink = {}
    for mode in ("coupled", "decoupled"):
        var = keras.Variable(np.ones(1, np.float32))
        opt = build_optimizer(dataclasses.replace(base, weight_decay_mode=mode), steps_per_epoch=1)
        opt.build([var])
        steps(opt, var, 1000)()
        assert int(opt.iterations.numpy()) == 1000
        shrink[mode] = float(var.numpy()[0])
    assert shrink["coupled"] == pytest.approx(pytorch_sgd(np.ones(1), [np.zeros(1)] * 1000, 0.1, 0.9, 5e-4)[0], 1e-4)
    assert shrink["coupled"] == pytest.approx(0.61, abs=0.01) and shrink["decoupled"] == pytest.approx(0.95, abs=0.01)

"""The strong baseline's model and training options (BoT, Luo et al. 2019): BNNeck (retrieval on the
post-BN feature, also through save / load / `load_embedder`), last stride 1, the warm-up + multi-step
schedule, coupled Adam against PyTorch's update, and the center loss's own SGD step on the centres."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import sal_tf
from sal_tf.losses import CenterLoss, SALObjective
from sal_tf.models import load_model
from sal_tf.training.loop import LoopOptions, center_side_update, make_train_step
from sal_tf.training.optimizer import CoupledAdam
from sal_tf.training.schedules import WarmupStepDecay
from tests.conftest import tiny_model

PLAIN = dict(dilation=False, multi_level=False, stage6=False)


@pytest.fixture(scope="module")
def bnneck_model():
    keras.utils.set_random_seed(0)
    model = tiny_model(5, bnneck=True, last_stride=1, **PLAIN)
    bn = model.get_layer("bnneck")
    rng = np.random.default_rng(0)
    dim = bn.gamma.shape[0]
    bn.gamma.assign(rng.uniform(0.5, 2, dim).astype("float32"))
    bn.moving_mean.assign(rng.normal(0, 1, dim).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 3, dim).astype("float32"))
    return model


def images(n=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 64, 32, 3)).astype("float32")


def test_bnneck_embedding_is_the_batch_normalised_pre_bn_feature(bnneck_model):
    bn = bnneck_model.get_layer("bnneck")
    assert bn.beta is None  # BoT: no shift
    assert not bnneck_model.get_layer("classifier").use_bias
    out = bnneck_model(images(), training=False)
    pre = np.asarray(out["pre_bn_embedding"], np.float64)
    mean, var = np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)
    want = (pre - mean) / np.sqrt(var + bn.epsilon) * np.asarray(bn.gamma)
    np.testing.assert_allclose(np.asarray(out["embedding"]), want, rtol=1e-4, atol=1e-4)
    logits = np.asarray(out["embedding"]) @ np.asarray(bnneck_model.get_layer("classifier").kernel)
    np.testing.assert_allclose(np.asarray(out["logits"]), logits, rtol=1e-4, atol=1e-4)


def test_without_bnneck_the_outputs_are_unchanged():
    model = tiny_model(5, **PLAIN)
    assert set(model.output) == {"embedding", "logits", "attention"}
    assert model.get_layer("classifier").use_bias
    assert "bnneck" not in [layer.name for layer in model.layers]


def test_saved_bnneck_model_retrieves_with_the_post_bn_feature(bnneck_model, tmp_path):
    path = str(tmp_path / "stage1.keras")
    bnneck_model.save(path)
    x = images()
    want = np.asarray(bnneck_model(x, training=False)["embedding"])
    loaded = load_model(path)
    assert loaded.bnneck and loaded.last_stride == 1
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)["embedding"]), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(loaded.embedding_model()(x)), want, rtol=1e-5, atol=1e-5)
    normalised = want / np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(sal_tf.load_embedder(path)(x), normalised, rtol=1e-4, atol=1e-4)
    pre = np.asarray(bnneck_model(x, training=False)["pre_bn_embedding"])
    assert not np.allclose(normalised, pre / np.linalg.norm(pre, axis=1, keepdims=True), atol=1e-2)


def test_config_round_trip_keeps_bnneck_and_last_stride(bnneck_model):
    config = bnneck_model.get_config()
    assert config["bnneck"] is True and config["last_stride"] == 1
    again = type(bnneck_model).from_config(config)
    assert again.get_config() == config
    assert set(again.output) == {"embedding", "pre_bn_embedding", "logits", "attention"}


def test_last_stride_one_keeps_conv5_at_stage4_resolution():
    wide = tiny_model(5, last_stride=1, dilation=False)
    narrow = tiny_model(5, dilation=False)
    assert wide.attention_map_size == (4, 2) and narrow.attention_map_size == (2, 1)  # 64×32 / 16 and / 32
    assert tuple(wide.get_layer("conv5_block1_out").output.shape[1:3]) == (4, 2)
    assert "conv4_pool" not in [layer.name for layer in wide.layers]  # stage4 is already at that size
    with pytest.raises(ValueError, match="last_stride"):
        tiny_model(5, last_stride=3)


def test_bot_schedule_warms_up_from_a_tenth_and_steps_at_the_milestones():
    s = 10  # steps per epoch
    lr = WarmupStepDecay(3.5e-4, decay_steps=50 * s, warmup_steps=10 * s, warmup_start=0.1, milestones=[40 * s, 70 * s])
    at = lambda epoch: float(lr(int(epoch * s)))  # noqa: E731
    np.testing.assert_allclose(
        [at(0), at(5), at(10), at(39.9), at(40), at(69.9), at(70), at(119)],
        [3.5e-5, 3.5e-4 * 0.55, 3.5e-4, 3.5e-4, 3.5e-5, 3.5e-5, 3.5e-6, 3.5e-6],
        rtol=1e-5,
    )
    paper = WarmupStepDecay(0.05, decay_steps=18 * s, warmup_steps=3 * s)  # the demo's stage 1, unchanged
    np.testing.assert_allclose([float(paper(0)), float(paper(18 * s))], [0.05 / 30, 0.005], rtol=1e-6)


def test_coupled_adam_is_pytorchs_adam_with_weight_decay():
    w0, grads, lr, wd, eps = np.array([1.0, -2.0, 0.5]), [np.array([0.3, -0.1, 0.2])] * 3, 1e-2, 5e-4, 1e-8
    var = keras.Variable(w0.astype("float32"))
    optimizer = CoupledAdam(learning_rate=lr, l2=wd)
    w, m, v = w0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        optimizer.apply_gradients([(g.astype("float32"), var)])
        g = g + wd * w  # torch.optim.Adam(weight_decay=wd)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + eps)
    np.testing.assert_allclose(np.asarray(var), w, rtol=1e-5)


def test_center_loss_centres_take_their_own_sgd_step_divided_by_the_weight():
    """BoT: c_j ← c_j − 0.5 · ∂L_C/∂c_j with ∂L_C/∂c_j = 2/B Σ_{y_i = j} (c_j − x_i), whatever the loss weight."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    embedding = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, {"embedding": embedding, "logits": keras.layers.Dense(2)(embedding)})
    objective = SALObjective(metric=None, sac=False, center_weight=5e-4, centers=CenterLoss(2, 3))
    side = center_side_update(objective, learning_rate=0.5)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    labels = np.array([0, 0, 1, 1, 1, 0], "int32")
    features = np.asarray(model(x)["embedding"], np.float64)
    centers = np.asarray(objective.centers.centers, np.float64)
    want = centers.copy()
    for j in range(2):
        want[j] -= 0.5 * 2 / len(x) * np.sum(centers[j] - features[labels == j], axis=0)
    step = make_train_step(
        tf.distribute.get_strategy(), model, objective, keras.optimizers.SGD(0.1), LoopOptions(), side
    )
    step(iter(tf.data.Dataset.from_tensors((x, labels)).repeat()))
    np.testing.assert_allclose(np.asarray(objective.centers.centers), want, rtol=1e-5, atol=1e-6)

"""SAL model: shapes, switches (stage6, depth), validation, ImageNet-weight loading, serialisation."""

import ast
import pathlib

import keras
import numpy as np
import pytest

from sal_tf.models import SALModel, build_model, get_preset, load_backbone_weights
from sal_tf.models.preprocessing import caffe_preprocess
from sal_tf.models.stats import model_stats
from tests.conftest import REPO


def random_resnet_h5(tmp_path_factory, name, seed, input_shape):
    """(model, path): `keras.applications.<name>` with random weights, saved as a legacy .h5."""
    keras.utils.set_random_seed(seed)
    ref = getattr(keras.applications, name)(weights=None, include_top=False, input_shape=input_shape)
    path = str(tmp_path_factory.mktemp(f"weights_{name}") / f"{name.lower()}_random.h5")
    ref.save(path)
    return ref, path


@pytest.fixture(scope="module")
def keras_resnet_h5(tmp_path_factory):
    """keras.applications.ResNet50 with random weights, saved as a legacy .h5."""
    return random_resnet_h5(tmp_path_factory, "ResNet50", 1, (256, 128, 3))


def test_paper_preset_shapes():
    model = build_model("paper", num_classes=751, verbose=False)
    out = model(np.zeros((1, 256, 128, 3), "float32"))
    assert tuple(out["embedding"].shape) == (1, 1024)
    assert tuple(out["logits"].shape) == (1, 751)
    assert tuple(out["attention"].shape) == (1, 3, 512)
    assert model.attention_map_size == (32, 16)
    assert model.attention_stages == ("stage4", "stage5", "stage6")
    for name in ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out", "conv6_block3_out"):
        assert tuple(model.get_layer(name).output.shape[1:3]) == (32, 16), name
    assert model.get_layer("conv6_block3_out").output.shape[-1] == 1024
    assert model.get_layer("multi_level").output.shape[-1] == 4096
    # 34.29 M parameters with a 751-way classifier (BUILD.md "Model").
    assert abs(model.count_params() - 34.29e6) < 0.01e6
    att = np.asarray(out["attention"])
    np.testing.assert_allclose(np.linalg.norm(att, axis=-1), 1.0, rtol=1e-5)


def test_imagenet_h5_loads_by_name_and_matches_keras(keras_resnet_h5):
    ref, path = keras_resnet_h5
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, 256, 128, 3)).astype("float32")
    x_caffe = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(caffe_preprocess(x)), x_caffe, atol=1e-4)

    ours = build_model("paper", num_classes=5, backbone_weights=None, verbose=False)
    report = load_backbone_weights(ours, path, verbose=False)
    ref_layers = [layer.name for layer in ref.layers if layer.weights]
    assert sorted(report["matched"]) == sorted(ref_layers)  # every conv/BN of Keras' ResNet50

    def probe(model, name, inp):
        return np.asarray(keras.Model(model.input, model.get_layer(name).output)(inp))

    np.testing.assert_allclose(
        probe(ours, "conv3_block4_out", x), probe(ref, "conv3_block4_out", x_caffe), atol=1e-5, rtol=1e-5
    )
    plain = build_model("paper", num_classes=5, dilation=False, backbone_weights=path, verbose=False)
    a, b = probe(plain, "conv5_block3_out", x), probe(ref, "conv5_block3_out", x_caffe)
    assert a.shape == b.shape == (2, 8, 4, 2048)
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_mismatched_h5_is_a_clear_error(tmp_path):
    old = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="res2a_branch2a")])
    path = str(tmp_path / "old.h5")
    old.save(path)
    model = build_model("tiny", num_classes=3, verbose=False)
    with pytest.raises(ValueError, match="res2a_branch2a"):
        load_backbone_weights(model, path)
    with pytest.raises(FileNotFoundError, match="--backbone_weights"):
        load_backbone_weights(model, str(tmp_path / "missing.h5"))


def test_imagenet_without_network_names_file_and_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    import sal_tf.models.weights as weights

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    model = build_model("tiny", num_classes=3, verbose=False)
    with pytest.raises(FileNotFoundError) as err:
        load_backbone_weights(model, "imagenet")
    msg = str(err.value)
    assert weights.imagenet_weights_file(50) in msg and "--backbone_weights" in msg and str(tmp_path) in msg


def test_tiny_width_mismatch_is_clear(keras_resnet_h5):
    _, path = keras_resnet_h5
    model = build_model("tiny", num_classes=3, verbose=False)
    with pytest.raises(ValueError, match="width_divisor=1"):
        load_backbone_weights(model, path)


@pytest.mark.parametrize(
    "overrides, grid, feat_channels",
    [
        ({}, (8, 4), 128 + 256 + 128),
        ({"multi_level": False}, (8, 4), 128),
        ({"dilation": False}, (2, 1), 128 + 256 + 128),
        ({"dilation": False, "multi_level": False}, (2, 1), 128),
        ({"stage6": False}, (8, 4), 128 + 256),
        ({"stage6": False, "multi_level": False}, (8, 4), 256),
        ({"stage6": False, "dilation": False}, (2, 1), 128 + 256),
        ({"stage6": False, "dilation": False, "multi_level": False}, (2, 1), 256),
    ],
)
def test_switches(overrides, grid, feat_channels):
    model = build_model("tiny", num_classes=7, verbose=False, **overrides)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 32, 3)).astype("float32")
    out = model(x)
    stage6 = overrides.get("stage6", True)
    stages = ("stage4", "stage5", "stage6") if stage6 else ("stage4", "stage5")
    assert model.attention_stages == stages
    assert model.attention_map_size == grid
    assert tuple(out["attention"].shape) == (2, len(stages), grid[0] * grid[1])
    assert tuple(out["logits"].shape) == (2, 7)
    assert tuple(out["embedding"].shape) == (2, 128)  # the FC embedding stays in every setting
    assert model.get_layer("gap").input.shape[-1] == feat_channels
    names = {layer.name for layer in model.layers}
    assert ("multi_level" in names) == overrides.get("multi_level", True)
    assert ("conv4_pool" in names) == (not overrides.get("dilation", True))
    assert any(n.startswith("conv6_") for n in names) == stage6
    dil = model.get_layer("conv4_block2_2_conv").dilation_rate
    assert dil == ((2, 2) if overrides.get("dilation", True) else (1, 1))
    # Row s of the attention output is eq. 1 on that stage's output (stage4 pooled to the grid).
    last = "conv6_block3_out" if stage6 else "conv5_block3_out"
    probe = keras.Model(model.input, [model.get_layer("attention_stage4").input, model.get_layer(last).output])
    s4, s_last = (np.asarray(t) for t in probe(x))
    for row, feat in ((0, s4), (len(stages) - 1, s_last)):
        a = (feat**2).mean(-1).reshape(2, -1)
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        np.testing.assert_allclose(np.asarray(out["attention"])[:, row], a, rtol=1e-4, atol=1e-6)


SAL_HEAD = {"images", "preprocessing", "conv4_pool", "multi_level", "gap", "embedding", "embedding_float32"}
SAL_HEAD |= {"classifier", "attention", "attention_stage4", "attention_stage5"}


def _conv_config(layer):
    keys = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "pool_size", "epsilon")
    return {k: v for k, v in layer.get_config().items() if k in keys}


def test_no_stage6_no_dilation_is_plain_resnet50():
    """stage6=False + dilation=False: the backbone is exactly keras.applications.ResNet50 (+ the FC head)."""
    ref = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 32, 3))
    ours = build_model("paper", num_classes=5, image_size=(64, 32), dilation=False, stage6=False, verbose=False)
    ref_layers = {layer.name: layer for layer in ref.layers if not isinstance(layer, keras.layers.InputLayer)}
    our_layers = {layer.name: layer for layer in ours.layers if layer.name not in SAL_HEAD}
    assert sorted(our_layers) == sorted(ref_layers)
    for name, layer in ref_layers.items():
        assert type(our_layers[name]) is type(layer), name
        assert _conv_config(our_layers[name]) == _conv_config(layer), name
        assert [tuple(v.shape) for v in our_layers[name].weights] == [tuple(v.shape) for v in layer.weights], name
    # GAP(concat(conv4 pooled, conv5)) → FC-1024 → classifier: Keras' ResNet50 parameters + the two dense layers.
    assert ours.count_params() == ref.count_params() + ((1024 + 2048) * 1024 + 1024) + (1024 * 5 + 5)
    assert model_stats(ours)["parameters"] == ours.count_params()
    for name, layer in ref_layers.items():
        if layer.weights:
            our_layers[name].set_weights(layer.get_weights())
    x = np.random.default_rng(3).uniform(0, 255, (2, 64, 32, 3)).astype("float32")
    got = keras.Model(ours.input, ours.get_layer("conv5_block3_out").output)(x)
    want = ref(keras.applications.resnet50.preprocess_input(x.copy()))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4, rtol=1e-4)
    assert ours.attention_map_size == (2, 1) and ours.attention_stages == ("stage4", "stage5")


def test_cifar_preset():
    model = build_model("cifar", num_classes=100, verbose=False, width_divisor=8)
    assert model.get_layer("conv1_conv").kernel_size == (3, 3)
    assert "pool1_pool" not in {layer.name for layer in model.layers}
    out = model(np.zeros((2, 32, 32, 3), "float32"))
    assert tuple(out["attention"].shape) == (2, 3, 16 * 16)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(preset="huge"), "preset"),
        (dict(preset="tiny", image_size=(60, 32)), "divisible by 8"),
        (dict(preset="tiny", image_size=(64, 48), dilation=False), "divisible by 32"),
        (dict(preset="tiny", num_classes=0), "num_classes"),
        (dict(preset="tiny", stem="vgg"), "stem"),
        (dict(preset="tiny", depth=34), "depth"),
        (dict(preset="tiny", stages=6), "Unknown model options"),
    ],
)
def test_invalid_config(kwargs, match):
    kwargs.setdefault("num_classes", 3)
    with pytest.raises(ValueError, match=match):
        build_model(verbose=False, **kwargs)


@pytest.mark.parametrize(
    "overrides",
    [{"stage6_dilation": 3}, {"stage6": False, "dilation": False}, {"depth": 101, "stage6": False}],
)
def test_keras_save_load_round_trip(tmp_path, overrides):
    model = build_model("tiny", num_classes=4, verbose=False, **overrides)
    x = np.random.default_rng(1).uniform(0, 255, (3, 64, 32, 3)).astype("float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SALModel)
    assert loaded.get_config() == model.get_config()
    for key, value in overrides.items():
        assert loaded.get_config()[key] == value
    assert loaded.attention_map_size == model.attention_map_size
    assert loaded.attention_stages == model.attention_stages
    a, b = model(x), loaded(x)
    for key in ("embedding", "logits", "attention"):
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
    again = SALModel.from_config(model.get_config())
    assert again.count_params() == model.count_params()


def test_old_config_without_depth_or_stage6_loads_as_resnet50_with_stage6():
    config = build_model("tiny", num_classes=4, verbose=False).get_config()
    del config["depth"], config["stage6"]
    model = SALModel.from_config(config)
    assert model.depth == 50 and model.stage6 and model.attention_stages[-1] == "stage6"


def test_embedding_model_shares_weights():
    model = build_model("tiny", num_classes=4, verbose=False)
    emb = model.embedding_model()
    x = np.random.default_rng(2).uniform(0, 255, (2, 64, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(emb(x)), np.asarray(model(x)["embedding"]), atol=1e-6)


def test_presets_are_copies():
    p = get_preset("tiny")
    p["embedding_dim"] = 1
    assert get_preset("tiny")["embedding_dim"] == 128


def test_model_and_loss_code_import_no_tensorflow():
    for sub in ("models", "losses"):
        for path in (pathlib.Path(REPO) / "sal_tf" / sub).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                for n in names:
                    assert not n.startswith("tensorflow"), f"{path} imports {n}"


# ---------------------------------------------------------------------------------- ResNet101
@pytest.fixture(scope="module")
def keras_resnet101_h5(tmp_path_factory):
    """keras.applications.ResNet101 with random weights at a tiny input, saved as a legacy .h5."""
    return random_resnet_h5(tmp_path_factory, "ResNet101", 2, (64, 32, 3))


def test_resnet101_h5_loads_by_name_and_matches_keras(keras_resnet101_h5):
    ref, path = keras_resnet101_h5
    ours = build_model("paper", num_classes=5, image_size=(64, 32), depth=101, dilation=False, verbose=False)
    names = {layer.name for layer in ours.layers}
    assert {"conv4_block23_out", "conv6_block3_out"} <= names and "conv4_block24_out" not in names
    report = load_backbone_weights(ours, path, verbose=False)
    assert sorted(report["matched"]) == sorted(layer.name for layer in ref.layers if layer.weights)
    x = np.random.default_rng(4).uniform(0, 255, (2, 64, 32, 3)).astype("float32")
    x_caffe = keras.applications.resnet.preprocess_input(x.copy())
    for name in ("conv4_block23_out", "conv5_block3_out"):
        got = keras.Model(ours.input, ours.get_layer(name).output)(x)
        want = keras.Model(ref.input, ref.get_layer(name).output)(x_caffe)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=1e-5, err_msg=name)
    # Plain ResNet101 + FC head: Keras' parameters + the two dense layers.
    plain = build_model(
        "paper",
        num_classes=5,
        image_size=(64, 32),
        depth=101,
        dilation=False,
        stage6=False,
        multi_level=False,
        backbone_weights=path,
        verbose=False,
    )
    assert plain.count_params() == ref.count_params() + (2048 * 1024 + 1024) + (1024 * 5 + 5)
    assert (
        model_stats(plain)["gflops_per_image"]
        > model_stats(
            build_model(
                "paper",
                num_classes=5,
                image_size=(64, 32),
                dilation=False,
                stage6=False,
                multi_level=False,
                verbose=False,
            )
        )["gflops_per_image"]
    )


def test_imagenet_picks_the_file_of_the_depth(keras_resnet101_h5, keras_resnet_h5, tmp_path, monkeypatch):
    import sal_tf.models.weights as weights

    ref, path101 = keras_resnet101_h5
    _, path50 = keras_resnet_h5
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(open(path101, "rb").read())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    deep = build_model(
        "paper", num_classes=3, image_size=(64, 32), depth=101, backbone_weights="imagenet", verbose=False
    )
    np.testing.assert_array_equal(
        deep.get_layer("conv4_block23_3_conv").get_weights()[0], ref.get_layer("conv4_block23_3_conv").get_weights()[0]
    )
    shallow = build_model("paper", num_classes=3, image_size=(64, 32), verbose=False)
    with pytest.raises(FileNotFoundError, match=weights.imagenet_weights_file(50)):
        load_backbone_weights(shallow, "imagenet")
    # A file of the other depth is a clear error, never a partial load.
    with pytest.raises(ValueError, match=r"not in the model.*ResNet50"):
        load_backbone_weights(shallow, path101)
    with pytest.raises(ValueError, match=r"no weights in the file.*ResNet101.*23 blocks"):
        load_backbone_weights(deep, path50)


def test_depth_choices_and_width_rule_have_one_home():
    """`architecture.DEPTHS` is what the model builds, the ImageNet files exist for and the flags offer."""
    import sal_tf.models.weights as weights
    from sal_tf.models.architecture import DEPTHS, IMAGENET_DEPTHS, STAGE_BLOCKS, check_width_divisor
    from sal_tf.training.config import CHOICES

    assert set(DEPTHS) == set(STAGE_BLOCKS) and CHOICES["depth"] == DEPTHS
    assert set(weights.IMAGENET_MD5) == set(IMAGENET_DEPTHS) == set(DEPTHS) - {14}
    assert [weights.imagenet_weights_file(d) for d in (50, 101)] == [
        f"resnet{d}_weights_tf_dim_ordering_tf_kernels_notop.h5" for d in (50, 101)
    ]
    for depth in (14, 34):  # ResNet14 builds but has no published weights
        with pytest.raises(ValueError, match=f"No ImageNet weights for depth={depth}.*--backbone_weights=none"):
            weights.imagenet_weights_file(depth)
    from sal_tf.training.config import TrainConfig

    with pytest.raises(ValueError, match=r"--depth=14 has no ImageNet weights.*--backbone_weights=none"):
        TrainConfig(depth=14)  # refused before any data is read, not when the model is built
    assert TrainConfig(depth=14, backbone_weights="none").depth == 14
    resnet14 = SALModel(num_classes=3, image_size=(64, 32), width_divisor=8, depth=14)
    names = [layer.name for layer in resnet14.layers]
    assert all(f"conv{i}_block1_out" in names and f"conv{i}_block2_out" not in names for i in range(2, 6))
    assert "conv6_block3_out" in names  # stage6 keeps its 3 blocks (paper §3.1)
    with pytest.raises(ValueError, match="`depth` must be one of"):
        SALModel(num_classes=3, image_size=(64, 32), width_divisor=8, depth=34)
    for divisor in (0, 3, 128):
        with pytest.raises(ValueError, match=r"`width_divisor` must divide 64"):
            check_width_divisor(divisor)
        with pytest.raises(ValueError, match=r"--width_divisor must divide 64"):
            check_width_divisor(divisor, "--width_divisor")

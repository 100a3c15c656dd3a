"""Loading ImageNet ResNet50/101 weights into the SAL backbone by layer name.

Accepted sources (`backbone_weights=` / `--backbone_weights=`):
  * "imagenet": Keras' official notop file for the model's depth,
    `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` (`depth=50`) or
    `resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5` (`depth=101`), taken from
    the Keras cache (`$KERAS_HOME/models/`, default `~/.keras/models/`) or downloaded
    there by `keras.utils.get_file`; with no network this fails with a message naming
    the file, where to put it, and the flag for a path.
  * a path to a legacy Keras HDF5 file: a weights file (`layer_names` at the
    root, like the official files) or a whole-model `.h5` (`model_weights/`).
  * "none" / None: random initialisation.

Dilation does not change kernel shapes, so every conv/BN of stages 1–5 loads.
Stage6, the embedding and the classifier are new and keep their initialisation.
"""

import os

import h5py
import keras
import numpy as np

from sal_tf.models.architecture import IMAGENET_DEPTHS, STAGE_BLOCKS

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
# md5 of Keras' official notop file of each depth that has one, as keras.applications.resnet.WEIGHTS_HASHES.
IMAGENET_MD5 = {50: "4d473c1dd8becc155b73f8504c6f6626", 101: "88cf7a10940856eca736dc7b7e228a21"}
BACKBONE_PREFIXES = ("conv1_", "conv2_", "conv3_", "conv4_", "conv5_")


def keras_cache_dir():
    """The folder where Keras keeps downloaded model files."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "models")


def imagenet_weights_file(depth=50):
    """Name of Keras' official ImageNet notop file for ResNet`depth`."""
    if depth not in IMAGENET_DEPTHS:
        raise ValueError(
            f"No ImageNet weights for depth={depth!r}: Keras publishes ResNet{'/'.join(map(str, IMAGENET_DEPTHS))} "
            "only. Train it from scratch (--backbone_weights=none) or pick another depth."
        )
    return f"resnet{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5"


def resolve_imagenet_weights(depth=50):
    """Returns the path of the official ResNet`depth` notop file, downloading it if possible."""
    name = imagenet_weights_file(depth)
    url = BASE_URL + name
    cached = os.path.join(keras_cache_dir(), name)
    if os.path.isfile(cached):
        return cached
    try:
        return keras.utils.get_file(name, url, cache_subdir="models", file_hash=IMAGENET_MD5[depth])
    except Exception as e:  # no network, proxy, TLS, ...
        raise FileNotFoundError(
            f"ImageNet weights '{name}' are not in the Keras cache ({cached}) and could not be "
            f"downloaded ({type(e).__name__}: {e}). Download {url} on a machine with network "
            f"access and either put it at {cached} or pass its path with "
            f"--backbone_weights=/path/to/{name}."
        ) from e


def _h5_weight_groups(path):
    """Maps layer name → list of numpy arrays from a legacy Keras HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise ValueError(
                f"{path} is not a legacy Keras HDF5 weights file (no 'layer_names' attribute). "
                "Expected the format of keras.applications' "
                f"'{imagenet_weights_file()}' or a model saved with model.save('x.h5')."
            )
        for raw in root.attrs["layer_names"]:
            name = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
            g = root[name]
            names = [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
            if names:
                out[name] = [np.asarray(g[n]) for n in names]
    return out


def load_backbone_weights(model, weights, verbose=True):
    """Loads ImageNet-style ResNet50/101 weights into `model` by layer name.

    Args:
        model: a `SALModel` (or any model with Keras-applications layer names);
            its `depth` attribute (default 50) picks the "imagenet" file.
        weights: "imagenet", a path to a legacy `.h5` file, or None / "none".
        verbose: print how many layers were matched.

    Returns:
        dict with `matched` (layer names loaded) and `unmatched_file` (layers
        of the file with no counterpart in the model).

    Raises:
        FileNotFoundError: missing file / no network for "imagenet".
        ValueError: the file's layers do not match the backbone (e.g. the old
            `res2a_branch2a` naming, or a ResNet of another depth) or a weight shape differs.
    """
    if weights is None or str(weights).lower() == "none":
        return {"matched": [], "unmatched_file": []}
    depth = int(getattr(model, "depth", 50))
    path = resolve_imagenet_weights(depth) if weights == "imagenet" else str(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--backbone_weights: no such file {path!r}. Expected 'imagenet', 'none', or the path of "
            f"a Keras ResNet{depth} HDF5 file such as '{imagenet_weights_file(depth)}'."
        )
    groups = _h5_weight_groups(path)
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    matched = _check_backbone_match(path, groups, model_layers, depth)
    for name in matched:
        _set_layer_weights(path, model_layers[name], groups[name])
    unmatched = [n for n in groups if n not in model_layers]
    if verbose:
        print(
            f"Loaded backbone weights from {path}: {len(matched)} layers matched "
            f"({len(unmatched)} file layers unused; stage6/embedding/classifier keep their init)."
        )
    return {"matched": matched, "unmatched_file": unmatched}


def _check_backbone_match(path, groups, model_layers, depth):
    """The backbone (conv1..conv5) layer names to load; raises unless file and model agree on all."""
    backbone = [n for n in model_layers if n.startswith(BACKBONE_PREFIXES)]
    matched = [n for n in backbone if n in groups]
    if not matched:
        sample = ", ".join(list(groups)[:3])
        raise ValueError(
            f"{path}: none of its layers ({sample}, ...) match the backbone's Keras-applications "
            "layer names (conv1_conv, conv2_block1_1_conv, ...). Files with the old Keras-1 naming "
            "(res2a_branch2a) are not supported; use the official "
            f"'{imagenet_weights_file(depth)}'."
        )
    missing = [n for n in backbone if n not in groups]
    extra = [n for n in groups if n.startswith(BACKBONE_PREFIXES) and n not in model_layers]
    if missing or extra:
        detail = f"{len(missing)} backbone layers have no weights in the file (e.g. {missing[:3]})" if missing else ""
        if extra:
            detail += (
                "; " if detail else ""
            ) + f"{len(extra)} file backbone layers are not in the model (e.g. {extra[:3]})"
        raise ValueError(
            f"{path}: {detail}; refusing a partial load. Expected a full ResNet{depth} weights file "
            f"such as '{imagenet_weights_file(depth)}' (the model has depth={depth}: "
            f"conv4 has {STAGE_BLOCKS[depth][2]} blocks)."
        )
    return matched


def _set_layer_weights(path, layer, arrays):
    expected = [tuple(v.shape) for v in layer.weights]
    got = [tuple(a.shape) for a in arrays]
    if expected != got:
        raise ValueError(
            f"{path}: layer '{layer.name}' has weight shapes {got}, the model expects {expected} "
            "(ImageNet ResNet weights need width_divisor=1 and the imagenet stem)."
        )
    layer.set_weights(arrays)

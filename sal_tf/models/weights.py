"""Loading ImageNet ResNet50 weights into the SAL backbone by layer name.

Accepted sources (`backbone_weights=` / `--backbone_weights=`):
  * "imagenet": Keras' official `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`,
    taken from the Keras cache (`$KERAS_HOME/models/`, default `~/.keras/models/`)
    or downloaded there by `keras.utils.get_file`; with no network this fails
    with a message naming the file, where to put it, and the flag for a path.
  * a path to a legacy Keras HDF5 file: a weights file (`layer_names` at the
    root, like the official file) or a whole-model `.h5` (`model_weights/`).
  * "none" / None: random initialisation.

Dilation does not change kernel shapes, so every conv/BN of stages 1–5 loads.
Stage6, the embedding and the classifier are new and keep their initialisation.
"""

import os

import h5py
import keras
import numpy as np

WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + WEIGHTS_FILE
WEIGHTS_HASH = "4d473c1dd8becc155b73f8504c6f6626"


def keras_cache_dir():
    """The folder where Keras keeps downloaded model files."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "models")


def resolve_imagenet_weights():
    """Returns the path of the official notop file, downloading it if possible."""
    cached = os.path.join(keras_cache_dir(), WEIGHTS_FILE)
    if os.path.isfile(cached):
        return cached
    try:
        return keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_HASH)
    except Exception as e:  # no network, proxy, TLS, ...
        raise FileNotFoundError(
            f"ImageNet weights '{WEIGHTS_FILE}' are not in the Keras cache ({cached}) and could not be "
            f"downloaded ({type(e).__name__}: {e}). Download {WEIGHTS_URL} on a machine with network "
            f"access and either put it at {cached} or pass its path with "
            f"--backbone_weights=/path/to/{WEIGHTS_FILE}."
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
                f"'{WEIGHTS_FILE}' or a model saved with model.save('x.h5')."
            )
        for raw in root.attrs["layer_names"]:
            name = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
            g = root[name]
            names = [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
            if names:
                out[name] = [np.asarray(g[n]) for n in names]
    return out


def load_backbone_weights(model, weights, verbose=True):
    """Loads ImageNet-style ResNet50 weights into `model` by layer name.

    Args:
        model: a `SALModel` (or any model with Keras-applications layer names).
        weights: "imagenet", a path to a legacy `.h5` file, or None / "none".
        verbose: print how many layers were matched.

    Returns:
        dict with `matched` (layer names loaded) and `unmatched_file` (layers
        of the file with no counterpart in the model).

    Raises:
        FileNotFoundError: missing file / no network for "imagenet".
        ValueError: the file's layers do not match the backbone (e.g. the old
            `res2a_branch2a` naming) or a weight shape differs.
    """
    if weights is None or str(weights).lower() == "none":
        return {"matched": [], "unmatched_file": []}
    path = resolve_imagenet_weights() if weights == "imagenet" else str(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--backbone_weights: no such file {path!r}. Expected 'imagenet', 'none', or the path of "
            f"a Keras ResNet50 HDF5 file such as '{WEIGHTS_FILE}'."
        )
    groups = _h5_weight_groups(path)
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    backbone = [n for n in model_layers if n.startswith(("conv1_", "conv2_", "conv3_", "conv4_", "conv5_"))]
    matched = [n for n in backbone if n in groups]
    if not matched:
        sample = ", ".join(list(groups)[:3])
        raise ValueError(
            f"{path}: none of its layers ({sample}, ...) match the backbone's Keras-applications "
            "layer names (conv1_conv, conv2_block1_1_conv, ...). Files with the old Keras-1 naming "
            "(res2a_branch2a) are not supported; use the official "
            f"'{WEIGHTS_FILE}'."
        )
    missing = [n for n in backbone if n not in groups]
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} backbone layers have no weights in the file "
            f"(e.g. {missing[:3]}); refusing a partial load. Expected a full ResNet50 weights file."
        )
    for name in matched:
        layer = model_layers[name]
        arrays = groups[name]
        expected = [tuple(v.shape) for v in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            raise ValueError(
                f"{path}: layer '{name}' has weight shapes {got}, the model expects {expected} "
                "(ImageNet ResNet50 weights need width_divisor=1 and the imagenet stem)."
            )
        layer.set_weights(arrays)
    unmatched = [n for n in groups if n not in model_layers]
    if verbose:
        print(
            f"Loaded backbone weights from {path}: {len(matched)} layers matched "
            f"({len(unmatched)} file layers unused; stage6/embedding/classifier keep their init)."
        )
    return {"matched": matched, "unmatched_file": unmatched}

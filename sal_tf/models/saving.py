"""Loading a saved SAL Keras model, and where a training run keeps its stage models.

A training `--model_dir` holds `stage<N>.keras` (written when stage N ends,
`sal_tf/training/experiment.py`); `highest_stage_file` is the one home of that rule.

A bare `keras.saving.load_model("runs/demo/stage2.keras")` needs `import sal_tf.models.sal_model` first:
Keras 3 imports a config's module by itself only for the `keras*` packages
(`keras/src/saving/serialization_lib.py`, `_retrieve_class_or_fn`); `load_model` does it.
"""

import os
import re

STAGE_FILE = re.compile(r"^stage(\d+)\.keras$")


def highest_stage_file(model_dir):
    """Path of the highest `stage<N>.keras` in `model_dir`, or None when there is none."""
    stages = sorted((int(m.group(1)), n) for n in os.listdir(model_dir) if (m := STAGE_FILE.match(n)))
    return os.path.join(model_dir, stages[-1][1]) if stages else None


def load_model(path):
    """The Keras `SALModel` saved at `path` (a `.keras` file, or a training `--model_dir`: its highest stage).

    `keras.saving.load_model(path, compile=False)` with the `sal_tf` layers registered. For an
    embedder of any saved form (SavedModel exports too) use `sal_tf.load_embedder`.
    """
    import keras

    import sal_tf.models.sal_model  # noqa: F401  (registers SALModel and its layers with Keras)

    path = os.fspath(path)
    if os.path.isdir(path):
        stage = highest_stage_file(path)
        if stage is None:
            raise FileNotFoundError(f"{path!r} holds no stage<N>.keras (written when a training stage ends).")
        path = stage
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"No such model file {path!r}; expected a .keras file or a training --model_dir.")
    return keras.saving.load_model(path, compile=False)

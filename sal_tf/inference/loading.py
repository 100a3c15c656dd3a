"""`load_model(path)`: the three saved forms of a SAL model → an `Embedder`.

Accepted forms (`resolve_model_path` tells them apart):

* a training `--model_dir`: its highest `stage<N>.keras` (written when stage N ends,
  `sal_tf/training/trainer.py`), the one home of that rule (`find_model_file`);
* a `.keras` file (`model.save(...)`);
* an exported SavedModel version folder (`exports/sal/1/`, `export/saved_model.py`), or its
  parent `exports/sal/` (the highest version).

A bare `keras.saving.load_model("runs/demo/stage2.keras")` needs `import sal_tf.models` first:
Keras 3 imports a config's module by itself only for the `keras*` packages
(`keras/src/saving/serialization_lib.py`, `_retrieve_class_or_fn`); `load_model` does it.
"""

import json
import os
import re

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

STAGE_FILE = re.compile(r"^stage(\d+)\.keras$")
SAVED_MODEL_FILE = "saved_model.pb"
EXPORT_METADATA = os.path.join("assets.extra", "sal_tf_export.json")  # export/export_lib.py METADATA_FILE
FORMS = (
    "a training --model_dir holding stage<N>.keras, a .keras file, or an exported SavedModel "
    "version folder holding saved_model.pb (e.g. exports/sal/1)"
)


def highest_stage_file(model_dir):
    """Path of the highest `stage<N>.keras` in `model_dir`, or None when there is none."""
    stages = sorted((int(m.group(1)), n) for n in os.listdir(model_dir) if (m := STAGE_FILE.match(n)))
    return os.path.join(model_dir, stages[-1][1]) if stages else None


def find_model_file(model_dir=None, model=None):
    """The `.keras` file of a training run: `model`, or the highest `stage<N>.keras` of `model_dir`.

    Errors name the flag (`--model_dir` / `--model`) as the export and evaluate commands spell it.
    """
    if (model_dir is None) == (model is None):
        raise ValueError("Give exactly one of --model_dir (a training folder) or --model (a .keras file).")
    if model is not None:
        if not os.path.isfile(model):
            raise FileNotFoundError(
                f"--model: no such file {model!r}; expected a model saved with model.save(...keras)."
            )
        if not model.endswith(".keras"):
            raise ValueError(f"--model: {model!r} is not a .keras file (Keras 3 format from model.save).")
        return model
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"--model_dir: no such folder {model_dir!r}.")
    path = highest_stage_file(model_dir)
    if path is None:
        raise FileNotFoundError(
            f"--model_dir: {model_dir!r} holds no stage1.keras / stage2.keras (written when a training "
            "stage ends). Pass --model=PATH.keras to use another file."
        )
    return path


def _highest_version(folder):
    versions = [n for n in os.listdir(folder) if n.isdigit()]
    versions = [n for n in versions if os.path.isfile(os.path.join(folder, n, SAVED_MODEL_FILE))]
    return os.path.join(folder, max(versions, key=int)) if versions else None


def resolve_model_path(path):
    """("keras" | "saved_model", file or folder to load) for any of the three forms.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is none of the three forms (the message lists them).
    """
    path = os.fspath(path)
    expanded = os.path.expanduser(path)
    if not os.path.exists(expanded):
        raise FileNotFoundError(f"Model {path!r} does not exist; expected {FORMS}.")
    if os.path.isfile(expanded):
        if expanded.endswith(".keras"):
            return "keras", expanded
        raise ValueError(f"Model {path!r} is a file but not a .keras file; expected {FORMS}.")
    if os.path.isfile(os.path.join(expanded, SAVED_MODEL_FILE)):
        return "saved_model", expanded
    stage = highest_stage_file(expanded)
    if stage is not None:
        return "keras", stage
    version = _highest_version(expanded)
    if version is not None:
        return "saved_model", version
    raise ValueError(f"Model folder {path!r} holds no stage<N>.keras and no saved_model.pb; expected {FORMS}.")


def load_keras_model(path):
    """`keras.saving.load_model(path, compile=False)` with the `sal_tf` layers registered."""
    import keras

    import sal_tf.models  # noqa: F401  (registers SALModel and its layers with Keras)

    return keras.saving.load_model(path, compile=False)


def export_metadata(saved_model_dir):
    """The export's `assets.extra/sal_tf_export.json` as a dict ({} when absent)."""
    meta = os.path.join(saved_model_dir, EXPORT_METADATA)
    if not os.path.isfile(meta):
        return {}
    with open(meta) as f:
        return json.load(f)


def load_model(path):
    """Loads a SAL model in any saved form; returns an `Embedder`.

    Args:
        path: a training `--model_dir` (its highest `stage<N>.keras`), a `.keras` file, or an
            exported SavedModel version folder (or its parent: the highest version).

    Returns:
        `sal_tf.inference.embedder.Embedder`: `embedder(images)` maps RGB [B, H, W, 3] (uint8 or
        float in 0..255; other sizes resized bilinearly as the serving signatures do) to
        L2-normalised float32 [B, D]; `.image_size`, `.embedding_dim`, `.source`, `.kind`.
    """
    from sal_tf.inference import embedder

    kind, resolved = resolve_model_path(path)
    if kind == "keras":
        return embedder.KerasEmbedder(load_keras_model(resolved), source=resolved)
    import tensorflow as tf

    return embedder.SavedModelEmbedder(
        tf.saved_model.load(resolved), source=resolved, metadata=export_metadata(resolved)
    )

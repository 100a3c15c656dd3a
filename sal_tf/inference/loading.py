"""`load_embedder(path)`: any saved form of a SAL model → its `EmbeddingBackend` (`sal_tf/inference/backend.py`).

Every form (`sal_tf/inference/forms.py` tells them apart; `resolve_model_path` says which), among them:

* a training `--model_dir`: its highest `stage<N>.keras` (written when stage N ends,
  `sal_tf/training/experiment.py`; the rule lives in `sal_tf.models.saving`);
* a `.keras` file (`model.save(...)`);
* an exported SavedModel version folder (`exports/sal/1/`, `sal_tf/export/saved_model.py`), or
  its parent `exports/sal/` (the highest version);
* an `.onnx` or a `.tflite` file, or a folder holding several forms (the fastest).

The Keras model itself (not an embedder) comes from `sal_tf.models.load_model`. `load_model` here
is the old name of `load_embedder`, kept for one release with a `DeprecationWarning`.
"""

import os
import warnings

from sal_tf.models.saving import highest_stage_file


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


def resolve_model_path(path):
    """("keras" | "saved_model" | "onnx" | "tflite", the file or folder to open) of a model path (the
    fastest form of a folder holding several; `sal_tf.inference.forms.choose`).

    Raises:
        FileNotFoundError: `path` does not exist. ValueError: not a model (the message lists the forms).
    """
    from sal_tf.inference.forms import choose

    kind, resolved, _ = choose(path)
    return kind, resolved


def load_embedder(path, threads=None, form="auto", precision="float32"):
    """Loads a SAL model in any saved form; returns its `EmbeddingBackend` (images → embeddings).

    The one loader of every command: `sal_tf.inference.forms.open_backend` (a training
    `--model_dir`, a `.keras` file, a SavedModel folder, an `.onnx` or a `.tflite` file, or a folder
    holding several: the fastest form).

    Returns:
        `sal_tf.inference.backend.EmbeddingBackend`: `backend(images)` maps RGB [B, H, W, 3] (uint8 or
        float in 0..255; other sizes resized bilinearly as the serving signatures do) to
        L2-normalised float32 [B, D]; `.image_size`, `.embedding_dim`, `.source`, `.kind`, `.describe()`.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # SavedModels and the embedders run on TensorFlow
    from sal_tf.inference.forms import open_backend

    return open_backend(path, threads=threads, form=form, precision=precision)


def load_model(path):
    """Deprecated name of `load_embedder` (it returns an `Embedder`, not a Keras model).

    Kept for one release; `sal_tf.models.load_model` returns the Keras model.
    """
    warnings.warn(
        "sal_tf.load_model / sal_tf.inference.loading.load_model is renamed load_embedder (it returns an "
        "Embedder); the Keras model comes from sal_tf.models.load_model. The old name goes in the next release.",
        DeprecationWarning,
        stacklevel=2,
    )
    return load_embedder(path)

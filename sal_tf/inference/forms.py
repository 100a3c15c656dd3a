"""`open_backend(path)`: a SAL model in any saved form → its `EmbeddingBackend` (`sal_tf/inference/backend.py`).

    backend = open_backend("exports/tflite/sal/1/sal_int8.tflite", threads=2)
    embeddings = backend(images)            # RGB [B, h, w, 3] uint8 / float 0..255 → float32 [B, D], unit rows

Forms (`FORMS`), one implementation each:

* "keras": a training `--model_dir` (its highest `stage<N>.keras`) or a `.keras` file
  (`sal_tf.inference.embedder.KerasEmbedder`, TensorFlow);
* "saved_model": an exported SavedModel version folder (`exports/sal/1`) or its parent
  (`sal_tf.inference.embedder.SavedModelEmbedder`, TensorFlow);
* "onnx": an `.onnx` file in ONNX Runtime (`sal_tf.inference.onnx_backend`), NHWC or NCHW;
* "tflite": a `.tflite` file in LiteRT (`sal_tf.inference.tflite_backend`): float32, float16 or int8.

`form="auto"` (the default) on a folder holding several forms — a training folder with its exports,
an `--export_dir`, or a folder of model files — opens the fastest (`SPEED_ORDER`, measured on a
2-core CPU: BUILD.md "Deploying the appearance model"); `backend.chosen` says what was picked and
from which candidates, and the commands print it. Every command (`sal-evaluate`, `sal-embed`,
`sal-track`, `sal-serve`, `sal-mtmc`) and `BoxEncoder` open their model here.

The ONNX and TFLite back ends import neither TensorFlow nor Keras.
"""

import os

from sal_tf.inference.backend import (
    ACCEPTED,
    FORMS,
    SAVED_MODEL_FILE,
    EmbeddingBackend,
    check_precision,
    tflite_precision,
)
from sal_tf.models.saving import STAGE_FILE, highest_stage_file

# Fastest first on a 2-core x86 CPU (benchmarks/encoder.py; BUILD.md "Deploying the appearance model").
SPEED_ORDER = ("tflite:int8", "onnx:float32", "tflite:float32", "tflite:float16", "saved_model:float32",
               "keras:float32")  # fmt: skip


EXPORT_KINDS = ("onnx", "tflite", "nchw")  # an --export_dir's folders of other forms (sal_tf/export/export_lib.py)


def _highest_version(folder, holding=None):
    """The highest numbered sub-folder of `folder` (holding the file `holding`, if given), or None."""
    versions = [n for n in os.listdir(folder) if n.isdigit() and os.path.isdir(os.path.join(folder, n))]
    if holding:
        versions = [n for n in versions if os.path.isfile(os.path.join(folder, n, holding))]
    return os.path.join(folder, max(versions, key=int)) if versions else None


def _file_form(path):
    """(kind, precision) of a model file by its extension, or None."""
    if path.endswith(".keras"):
        return "keras", "float32"
    if path.endswith(".onnx"):
        return "onnx", "float32"
    if path.endswith(".tflite"):
        return "tflite", tflite_precision(path)
    return None


def _model_files(folder):
    """[(kind, precision, path)] of the model files directly in `folder` (training stages: the highest)."""
    found = []
    stage = highest_stage_file(folder)
    if stage:
        found.append(("keras", "float32", stage))
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not STAGE_FILE.match(name) and _file_form(name):
            found.append((*_file_form(name), path))
    return found


def candidates(folder):
    """[(kind, precision, path)] of the model forms in `folder`: its own files, its highest SavedModel
    version, and an `--export_dir`'s `<name>/<version>/`, `onnx/<name>/<version>/`, `tflite/<name>/<version>/`."""
    if os.path.isfile(os.path.join(folder, SAVED_MODEL_FILE)):
        return [("saved_model", "float32", folder)]
    found = _model_files(folder)
    subfolders = [os.path.join(folder, n) for n in sorted(os.listdir(folder))]
    for sub in [folder] + [s for s in subfolders if os.path.isdir(s) and os.path.basename(s) not in EXPORT_KINDS]:
        version = _highest_version(sub, SAVED_MODEL_FILE)
        if version:
            found.append(("saved_model", "float32", version))
    for kind in ("onnx", "tflite"):
        names = os.path.join(folder, kind)
        for name in sorted(os.listdir(names)) if os.path.isdir(names) else ():
            version = _highest_version(os.path.join(names, name))
            found += _model_files(version) if version else []
    return found


def _rank(candidate):
    key = f"{candidate[0]}:{candidate[1]}"
    return SPEED_ORDER.index(key) if key in SPEED_ORDER else len(SPEED_ORDER)


def choose(path, form="auto"):
    """(kind, path to open, how it was chosen) for `path` and `form` ("auto" or one of `FORMS`)."""
    if form != "auto" and form not in FORMS:
        raise ValueError(f"form must be 'auto' or one of {FORMS}; got {form!r}.")
    path = os.path.expanduser(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model {path!r} does not exist; expected {ACCEPTED}.")
    if os.path.isfile(path):
        found = _file_form(path)
        if found is None:
            raise ValueError(f"Model {path!r} is not a model file (by its name); expected {ACCEPTED}.")
        return found[0], path, ""
    found = [c for c in candidates(path) if form in ("auto", c[0])]
    if not found:
        what = f"no {form} model" if form != "auto" else "no model"
        raise ValueError(f"Model folder {path!r} holds {what}; expected {ACCEPTED}.")
    best = min(found, key=_rank)
    chosen = f"{form}: the fastest of {len(found)} forms" if len(found) > 1 else ""
    return best[0], best[2], chosen


def open_backend(path, threads=None, form="auto", precision="float32"):
    """The `EmbeddingBackend` of a model in any saved form (see the module docstring).

    Args:
        path: a file or folder (`ACCEPTED`).
        threads: intra-op threads of the runtime (ONNX Runtime, LiteRT; TensorFlow's when it has not
            started yet); None: the runtime's default.
        form: "auto" (the fastest form found) or one of `FORMS` to pick that form from a folder.
        precision: "float32", or "bfloat16" (opt-in): the Keras form computing in bfloat16 on a CPU with
            native bfloat16 arithmetic (`sal_tf.inference.backend.check_precision`); "auto" then picks the
            Keras form of a folder.

    Raises:
        FileNotFoundError: `path` does not exist. ValueError: not a model (the message names the file
        and the forms accepted).
    """
    if isinstance(path, EmbeddingBackend):
        return path
    if threads is not None and int(threads) < 1:
        raise ValueError(f"--threads must be >= 1. Received: {threads}")
    kind, resolved, chosen = choose(path, "keras" if precision == "bfloat16" and form == "auto" else form)
    check_precision(precision, kind)
    if kind == "onnx":
        from sal_tf.inference.onnx_backend import ONNXBackend

        backend = ONNXBackend(resolved, threads)
    elif kind == "tflite":
        from sal_tf.inference.tflite_backend import TFLiteBackend

        backend = TFLiteBackend(resolved, threads)
    else:
        from sal_tf.inference.embedder import open_tensorflow_form

        backend = open_tensorflow_form(kind, resolved, threads, precision)
    backend.chosen = chosen
    return backend

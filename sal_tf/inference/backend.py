"""One back end for every saved form of a SAL model: `EmbeddingBackend` and `open_backend(path)`.

    backend = open_backend("exports/tflite/sal/1/sal_int8.tflite", threads=2)
    embeddings = backend(images)            # RGB [B, h, w, 3] uint8 / float 0..255 → float32 [B, D], unit rows

Forms (`FORMS`), one implementation each:

* "keras": a training `--model_dir` (its highest `stage<N>.keras`) or a `.keras` file
  (`sal_tf.inference.embedder.KerasEmbedder`, TensorFlow);
* "saved_model": an exported SavedModel version folder (`exports/sal/1`) or its parent
  (`sal_tf.inference.embedder.SavedModelEmbedder`, TensorFlow);
* "onnx": an `.onnx` file in ONNX Runtime (`sal_tf.inference.onnx_backend`), NHWC or NCHW;
* "tflite": a `.tflite` file in LiteRT (`sal_tf.inference.tflite_backend`): float32, float16 or
  int8 (full-integer files take uint8 pixels as they are).

`form="auto"` (the default) on a folder holding several forms — a training folder with its exports,
an `--export_dir`, or a folder of model files — opens the fastest (`SPEED_ORDER`, measured on a
2-core CPU: BUILD.md "Deploying the appearance model"); `backend.chosen` says what was picked and
from which candidates, and the commands print it. Every command (`sal-evaluate`, `sal-embed`,
`sal-track`, `sal-serve`, `sal-mtmc`) and `BoxEncoder` open their model here.

The ONNX and TFLite back ends import neither TensorFlow nor Keras.
"""

import abc
import os

import numpy as np

from sal_tf.inference.loading import SAVED_MODEL_FILE
from sal_tf.inference.resize import resize_images
from sal_tf.models.saving import STAGE_FILE, highest_stage_file

DEFAULT_BATCH = 64  # images per model call in `EmbeddingBackend.__call__`
FORMS = ("keras", "saved_model", "onnx", "tflite")
FORM_NAMES = {"keras": "Keras model", "saved_model": "SavedModel", "onnx": "ONNX file", "tflite": "TFLite file"}
ACCEPTED = (
    "a training --model_dir (stage<N>.keras), a .keras file, an exported SavedModel folder (saved_model.pb), "
    "an .onnx file or a .tflite file (or a folder holding several: the fastest is used)"
)
# Fastest first on a 2-core x86 CPU (benchmarks/encoder.py; BUILD.md "Deploying the appearance model").
SPEED_ORDER = ("tflite:int8", "onnx:float32", "keras:float32", "saved_model:float32", "tflite:float16",
               "tflite:float32")  # fmt: skip


def unit_rows(x):
    """Rows scaled to unit length (zero rows stay zero), float32."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


class EmbeddingBackend(abc.ABC):
    """A loaded model: RGB images → L2-normalised float32 embeddings [B, D].

    Attributes:
        kind: one of `FORMS`. precision: "float32", "float16" or "int8".
        source: the file / folder loaded. image_size: (H, W) the model takes. embedding_dim: D.
        threads: the runtime's intra-op threads (None: its default).
        has_attention: whether `attention(images)` works (Keras forms of a `SALModel`).
        chosen: how `open_backend` picked this form ("" for a single form).
    """

    kind = None
    precision = "float32"
    has_attention = False
    threads = None
    chosen = ""

    def __init__(self, source, image_size, embedding_dim):
        self.source = source
        self.image_size = tuple(int(s) for s in image_size)
        self.embedding_dim = int(embedding_dim)

    def __repr__(self):
        return (
            f"{type(self).__name__}(source={self.source!r}, image_size={self.image_size}, "
            f"embedding_dim={self.embedding_dim})"
        )

    def describe(self):
        """One line for the user: form, precision, threads, source (and how it was chosen)."""
        threads = f", {self.threads} threads" if self.threads else ""
        text = f"{self.kind} ({self.precision}{threads}) {self.source}"
        return f"{text} [{self.chosen}]" if self.chosen else text

    @abc.abstractmethod
    def embed_array(self, images):
        """numpy RGB [b, H, W, 3] at `image_size` (uint8 or float32, 0..255) → float32 [b, D] unit rows."""

    def __call__(self, images, flip=False, batch_size=DEFAULT_BATCH):
        """Embeddings of RGB images [B, h, w, 3] (resized bilinearly to `image_size`): float32 [B, D].

        flip: average the unit embeddings of each image and its mirror, normalised again.
        """
        x = resize_images(images, self.image_size)
        chunks = [self.embed_batch(x[s : s + batch_size], flip) for s in range(0, len(x), batch_size)]
        if not chunks:
            return np.zeros((0, self.embedding_dim), np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def embed_batch(self, images, flip=False):
        """A batch at `image_size` (numpy or tf) → np.float32 [b, D] (no checks)."""
        x = np.asarray(images)
        if not flip:
            return self.embed_array(x)
        return unit_rows(self.embed_array(x) + self.embed_array(np.ascontiguousarray(x[:, :, ::-1])))

    def attention(self, images):
        """Attention maps (paper eq. 1): Keras forms of a `SALModel` only."""
        raise ValueError(
            f"{self.source!r} is a {FORM_NAMES[self.kind]}, which holds only the embedding; attention maps need "
            "the .keras file or the training --model_dir."
        )


def _highest_version(folder):
    versions = [n for n in os.listdir(folder) if n.isdigit() and os.path.isdir(os.path.join(folder, n))]
    return os.path.join(folder, max(versions, key=int)) if versions else None


def tflite_precision(path):
    """ "int8" / "float16" / "float32" of a `.tflite` file, from its name (`python -m export` names them)."""
    name = os.path.basename(path)
    return next((p for p in ("int8", "float16") if f"_{p}" in name or name.startswith(p)), "float32")


def _file_form(path):
    """(kind, precision) of a model file by its extension, or None."""
    if path.endswith(".keras"):
        return "keras", "float32"
    if path.endswith(".onnx"):
        return "onnx", "float32"
    if path.endswith(".tflite"):
        return "tflite", tflite_precision(path)
    return None


def candidates(folder):
    """[(kind, precision, path)] of the model forms in `folder` (see the module docstring)."""
    found = []
    if os.path.isfile(os.path.join(folder, SAVED_MODEL_FILE)):
        return [("saved_model", "float32", folder)]
    stage = highest_stage_file(folder)
    if stage:
        found.append(("keras", "float32", stage))
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        form = _file_form(name) if os.path.isfile(path) and not STAGE_FILE.match(name) else None
        if form:
            found.append((*form, path))
    version = _highest_version(folder)
    if version and os.path.isfile(os.path.join(version, SAVED_MODEL_FILE)):
        found.append(("saved_model", "float32", version))
    for sub in ("onnx", "tflite"):  # an --export_dir: <sub>/<name>/<version>/
        names = os.path.join(folder, sub)
        for name in sorted(os.listdir(names)) if os.path.isdir(names) else ():
            version = _highest_version(os.path.join(names, name))
            if version:
                found += [(*_file_form(f), os.path.join(version, f)) for f in sorted(os.listdir(version))
                          if _file_form(f)]  # fmt: skip
    for name in sorted(os.listdir(folder)):  # an --export_dir: <name>/<version>/saved_model.pb
        sub = os.path.join(folder, name)
        version = _highest_version(sub) if os.path.isdir(sub) and name not in ("onnx", "tflite", "nchw") else None
        if version and os.path.isfile(os.path.join(version, SAVED_MODEL_FILE)):
            found.append(("saved_model", "float32", version))
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


def open_backend(path, threads=None, form="auto"):
    """The `EmbeddingBackend` of a model in any saved form (see the module docstring).

    Args:
        path: a file or folder (`ACCEPTED`).
        threads: intra-op threads of the runtime (ONNX Runtime, LiteRT; TensorFlow's when it has not
            started yet); None: the runtime's default.
        form: "auto" (the fastest form found) or one of `FORMS` to pick that form from a folder.

    Raises:
        FileNotFoundError: `path` does not exist. ValueError: not a model (the message names the file
        and the forms accepted).
    """
    if isinstance(path, EmbeddingBackend):
        return path
    if threads is not None and int(threads) < 1:
        raise ValueError(f"--threads must be >= 1. Received: {threads}")
    kind, resolved, chosen = choose(path, form)
    if kind == "onnx":
        from sal_tf.inference.onnx_backend import ONNXBackend

        backend = ONNXBackend(resolved, threads)
    elif kind == "tflite":
        from sal_tf.inference.tflite_backend import TFLiteBackend

        backend = TFLiteBackend(resolved, threads)
    else:
        from sal_tf.inference.embedder import open_tensorflow_form

        backend = open_tensorflow_form(kind, resolved, threads)
    backend.chosen = chosen
    return backend

"""The one interface of a loaded model in any saved form: `EmbeddingBackend`, and what its forms share.

Implementations, one per form: `sal_tf.inference.embedder` (Keras, SavedModel: TensorFlow),
`sal_tf.inference.onnx_backend` (ONNX Runtime), `sal_tf.inference.tflite_backend` (LiteRT). A path
becomes one through `sal_tf.inference.forms.open_backend` (the form picked from the path, or the
fastest of a folder holding several).
"""

import abc
import functools
import os

import numpy as np

from sal_tf.inference.resize import resize_images

DEFAULT_BATCH = 64  # images per model call in `EmbeddingBackend.__call__`
FORMS = ("keras", "saved_model", "onnx", "tflite")
SAVED_MODEL_FILE = "saved_model.pb"
FORM_NAMES = {"keras": "Keras model", "saved_model": "SavedModel", "onnx": "ONNX file", "tflite": "TFLite file"}
ACCEPTED = (
    "a training --model_dir (stage<N>.keras), a .keras file, an exported SavedModel folder (saved_model.pb), "
    "an .onnx file or a .tflite file (or a folder holding several: the fastest is used)"
)


PRECISIONS = ("float32", "bfloat16")  # what `open_backend(precision=...)` asks of a model's arithmetic
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


@functools.cache
def cpu_flags():
    """The CPU's feature flags (/proc/cpuinfo, read once: `open_backend` and `KerasEmbedder` both ask; an empty
    set where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            return frozenset(w for line in f if line.startswith("flags") for w in line.split())
    except OSError:
        return frozenset()


def check_precision(precision, kind="keras"):
    """`precision` if this form on this CPU computes in it; ValueError naming what is missing.

    "bfloat16" (opt-in, never a default; BUILD.md "Deploying the appearance model"): the Keras form only,
    on a CPU with native bfloat16 arithmetic (`BFLOAT16_CPU_FLAGS`) — elsewhere it would be emulated.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    if precision == "bfloat16":
        if kind != "keras":
            raise ValueError(
                f"precision='bfloat16' is offered for the Keras form only (a .keras file or a training folder); "
                f"this is a {FORM_NAMES[kind]}."
            )
        if not cpu_flags() & set(BFLOAT16_CPU_FLAGS):
            raise ValueError(
                f"precision='bfloat16' needs a CPU with native bfloat16 arithmetic ({' or '.join(BFLOAT16_CPU_FLAGS)}"
                " in /proc/cpuinfo); this one has neither. Use float32, or the int8 TFLite file."
            )
    return precision


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


def tflite_precision(path):
    """ "int8" / "float16" / "float32" of a `.tflite` file, from its name (`python -m export` names them)."""
    name = os.path.basename(path)
    return next((p for p in ("int8", "float16") if f"_{p}" in name or name.startswith(p)), "float32")

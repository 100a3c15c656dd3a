"""The TensorFlow forms of `sal_tf.inference.backend.EmbeddingBackend`: Keras and SavedModel.

Input convention (that of training, evaluation and the serving signatures, `sal_tf/export/signatures.py`):
RGB [B, H, W, 3], uint8 or float in 0..255; images of another size than the model's are resized
with bilinear `tf.image.resize` (no aspect-ratio padding); the model's first layer normalises.
Output: float32 [B, D] with unit rows, the numbers `sal_tf.evaluation.extract_features` (Keras)
and the SavedModel's `serving_images` produce.

Flip averaging (`flip=True`, as evaluation's `--flip_eval`): Keras forms average the raw
embeddings of the image and its mirror, then normalise (`extract_features`); a SavedModel only
holds normalised outputs, so it averages those and normalises again (differences ~1e-3).
"""

import json
import os

import numpy as np
import tensorflow as tf

from sal_tf.inference.backend import DEFAULT_BATCH, EmbeddingBackend, check_precision
from sal_tf.models.embedding import embedding_model_of

EXPORT_METADATA = os.path.join("assets.extra", "sal_tf_export.json")  # sal_tf/export/export_lib.py METADATA_FILE


def as_image_batch(images, image_size):
    """RGB images [B, h, w, 3] (numpy / tf, uint8 or float 0..255) → tf float32 [B, H, W, 3]."""
    x = images if tf.is_tensor(images) else np.asarray(images)
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"Expected RGB images [batch, height, width, 3] in 0..255. Received shape: {shape}")
    dtype = tf.as_dtype(x.dtype)
    if not (dtype.is_floating or dtype.is_integer):
        raise ValueError(f"Expected uint8 or float images in 0..255. Received dtype: {dtype.name}")
    x = tf.convert_to_tensor(x)
    if shape[1:3] != tuple(image_size):
        x = tf.image.resize(x, image_size, method="bilinear")  # as export.signatures.resize
    return tf.cast(x, tf.float32)


def open_tensorflow_form(kind, path, threads=None, precision="float32"):
    """The `Embedder` of a "keras" file or a "saved_model" folder (`sal_tf.inference.forms.open_backend`)."""
    if threads:
        set_tensorflow_threads(threads)
    if kind == "keras":
        from sal_tf.models.saving import load_model as load_keras_model

        return KerasEmbedder(load_keras_model(path), source=path, precision=precision)
    return SavedModelEmbedder(tf.saved_model.load(path), source=path, metadata=export_metadata(path))


def export_metadata(saved_model_dir):
    """The export's `assets.extra/sal_tf_export.json` as a dict ({} when absent)."""
    meta = os.path.join(saved_model_dir, EXPORT_METADATA)
    if not os.path.isfile(meta):
        return {}
    with open(meta) as f:
        return json.load(f)


def bfloat16_model(emb):
    """A copy of a Keras images → embedding model computing in bfloat16 (`mixed_bfloat16`: float32 weights,
    bfloat16 convolutions — oneDNN's AVX-512 BF16 kernels), with the same weights."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        return layer.__class__.from_config({**layer.get_config(), "dtype": "mixed_bfloat16"})

    copy = keras.models.clone_model(emb, clone_function=clone)
    copy.set_weights(emb.get_weights())
    return copy


def set_tensorflow_threads(threads):
    """TensorFlow's intra-op pool size, possible only before TensorFlow runs its first op (else unchanged)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    except RuntimeError:
        import warnings

        warnings.warn(
            f"threads={threads}: TensorFlow has already started; its thread pool keeps its size.", stacklevel=3
        )


class Embedder(EmbeddingBackend):
    """The TensorFlow forms: images resized with `tf.image.resize`, the model run by TensorFlow.

    Attributes: those of `EmbeddingBackend`; `kind` is "keras" or "saved_model".
    """

    def __call__(self, images, flip=False, batch_size=DEFAULT_BATCH):
        """Embeddings of `images` (see the module docstring): np.float32 [B, D]."""
        x = as_image_batch(images, self.image_size)
        chunks = [self.embed_batch(x[s : s + batch_size], flip) for s in range(0, int(x.shape[0]), batch_size)]
        if not chunks:
            return np.zeros((0, self.embedding_dim), np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def embed_batch(self, images, flip=False):
        """float32 tf images [b, H, W, 3] at `image_size` → np.float32 [b, D] (no checks)."""
        if flip:
            a = self.raw_embeddings(images)
            b = self.raw_embeddings(tf.reverse(images, axis=[2]))  # W is axis 2
            return tf.math.l2_normalize((a + b) / 2.0, axis=-1).numpy()
        return tf.math.l2_normalize(self.raw_embeddings(images), axis=-1).numpy()

    def embed_array(self, images):
        return self.embed_batch(tf.cast(images, tf.float32))

    def raw_embeddings(self, images):
        """float32 tf images [b, H, W, 3] at `image_size` → tf [b, D], not yet normalised by us (traceable).

        Keras forms: the raw embedding layer output; a SavedModel: its (already unit-length) output.
        """
        raise NotImplementedError


class KerasEmbedder(Embedder):
    """An `Embedder` over a Keras model (a `SALModel` or an images → embedding model).

    Attributes:
        model: the Keras model as loaded.
        attention_grid: (h, w) of each attention map when `has_attention` (`SALModel.attention_map_size`).
        attention_stages: names of the attention rows, e.g. ("stage4", "stage5", "stage6").
    """

    kind = "keras"

    def __init__(self, model, source=None, precision="float32"):
        emb, image_size = embedding_model_of(model)
        super().__init__(source, image_size, emb.output_shape[-1])
        self.model = model
        if check_precision(precision) == "bfloat16":
            emb, self.precision = bfloat16_model(emb), "bfloat16"
        spec = tf.TensorSpec([None, *self.image_size, 3], tf.float32)
        self._embed = tf.function(lambda x: tf.cast(emb(x, training=False), tf.float32), input_signature=[spec])
        outputs = model.output if isinstance(model.output, dict) else {}
        self.has_attention = "attention" in outputs and hasattr(model, "attention_map_size")
        if self.has_attention:
            self._attention = tf.function(lambda x: model(x, training=False)["attention"], input_signature=[spec])
            self.attention_grid = tuple(int(s) for s in model.attention_map_size)
            self.attention_stages = tuple(model.attention_stages)

    def raw_embeddings(self, images):
        return self._embed(images)

    def attention(self, images, batch_size=DEFAULT_BATCH):
        if not self.has_attention:
            raise ValueError(f"The model of {self.source!r} has no 'attention' output (not a SALModel).")
        x = as_image_batch(images, self.image_size)
        out = [self._attention(x[s : s + batch_size]).numpy() for s in range(0, int(x.shape[0]), batch_size)]
        return (
            np.concatenate(out)
            if out
            else np.zeros((0, len(self.attention_stages), int(np.prod(self.attention_grid))), np.float32)
        )


def _signature_with_input(loaded, dtype, rank):
    """(name, function, input key, output key, output `TensorSpec`) of the first signature with one
    input of `dtype` and `rank` and one output, or None."""
    for name, fn in sorted(loaded.signatures.items()):
        inputs = fn.structured_input_signature[1]
        outputs = fn.structured_outputs
        if len(inputs) == 1 and len(outputs) == 1:
            (key, spec), (out_key, out_spec) = next(iter(inputs.items())), next(iter(outputs.items()))
            if spec.dtype == dtype and spec.shape.rank == rank:
                return name, fn, key, out_key, out_spec
    return None


class SavedModelEmbedder(Embedder):
    """An `Embedder` over an exported SavedModel (`sal_tf/export/saved_model.py`).

    Float images at the model size go through the exported `serve_float` function (the model and
    the normalisation, as `serving_images` after its resize); without it, through `serving_images`
    with the pixels rounded to uint8.
    """

    kind = "saved_model"

    def __init__(self, loaded, source=None, metadata=None):
        found = _signature_with_input(loaded, tf.uint8, 4)
        if found is None:
            raise ValueError(
                f"SavedModel {source!r} has no signature taking uint8 images [B, H, W, 3] "
                f"(signatures: {sorted(loaded.signatures)}); expected one exported by `python -m export`."
            )
        self.signature_name, self._images_fn, self._input_key, self._output_key, out_spec = found
        self._float_fn = getattr(loaded, "serve_float", None)
        metadata = metadata or {}
        size = metadata.get("image_size") or self._float_size()
        if size is None:
            raise ValueError(
                f"SavedModel {source!r}: cannot tell the model's image size (no assets.extra/sal_tf_export.json "
                "and no serve_float function)."
            )
        super().__init__(source, size, out_spec.shape[-1])
        self.loaded = loaded
        self.metadata = metadata

    def _float_size(self):
        if self._float_fn is None:
            return None
        for fn in getattr(self._float_fn, "concrete_functions", []):
            (spec,) = fn.structured_input_signature[0]
            return tuple(spec.shape[1:3])
        return None

    def raw_embeddings(self, images):
        # The exported outputs are already normalised; normalising again changes nothing.
        if self._float_fn is not None:
            return self._float_fn(images)[self._output_key]
        pixels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.uint8)
        return self._images_fn(**{self._input_key: pixels})[self._output_key]

"""Model runners of `sal_tf.inference.boxes.BoxEncoder`, one per deployed form, picked from the path.

Each runner maps float32 RGB crops [n, H, W, 3] in 0..255 at its `image_size` to float32 [n, D]
with unit rows, and has `kind`, `source`, `image_size`, `embedding_dim`:

* `EmbedderRunner` ("keras" / "saved_model"): a training `--model_dir`, a `.keras` file or a
  SavedModel folder, through `sal_tf.load_embedder` (`sal_tf/inference/loading.py`);
* `ONNXRunner` ("onnx"): an `.onnx` file run by ONNX Runtime — the NHWC file of `python -m export
  --onnx` (RGB 0..255) or the NCHW file of `--nchw` (the PyTorch convention,
  `sal_tf/inference/torch_layout.py`), told apart by the input shape; a foreign NCHW re-ID model
  (e.g. a torchreid export) runs too, its rows normalised here;
* `TFLiteRunner` ("tflite"): a `.tflite` file run by LiteRT (`ai_edge_litert`), NHWC or NCHW.

The ONNX and TFLite runners import neither TensorFlow nor Keras.
"""

import os

import numpy as np

from sal_tf.inference.torch_layout import is_channels_first, to_nchw

DEFAULT_BATCH = 64  # crops per model call


def unit_rows(x):
    """Rows scaled to unit length (zero rows stay zero), float32."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


def open_runner(model, threads=None):
    """The runner of `model`: a path (form picked from it, see the module docstring) or an `Embedder`."""
    if hasattr(model, "embed_batch"):
        return EmbedderRunner(model)
    path = os.fspath(model)
    if path.endswith(".onnx"):
        return ONNXRunner(path, threads)
    if path.endswith(".tflite"):
        return TFLiteRunner(path, threads)
    from sal_tf.inference.loading import load_embedder

    return EmbedderRunner(load_embedder(path))


def _image_size(shape, source):
    """(H, W) of an input shape [B, H, W, 3] or [B, 3, H, W] with fixed H, W."""
    dims = list(shape[2:4]) if is_channels_first(shape) else list(shape[1:3])
    if not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
        raise ValueError(
            f"{source}: the input {list(shape)} has no fixed image size; expected [B, H, W, 3] or [B, 3, H, W]."
        )
    return tuple(int(d) for d in dims)


class EmbedderRunner:
    """Keras / SavedModel forms through an `Embedder`."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.kind, self.source = embedder.kind, embedder.source
        self.image_size, self.embedding_dim = embedder.image_size, embedder.embedding_dim

    def __call__(self, crops):
        return self.embedder(crops, batch_size=max(len(crops), 1))


class ONNXRunner:
    """An `.onnx` file in ONNX Runtime (CPU); NHWC 0..255 or NCHW ImageNet-normalised input."""

    kind = "onnx"

    def __init__(self, path, threads=None):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Model {path!r}: no such ONNX file.")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        (inp,), out = self.session.get_inputs(), self.session.get_outputs()[0]
        self.source, self.input_name, self.output_name = path, inp.name, out.name
        self.channels_first = is_channels_first(inp.shape)
        self.image_size = _image_size(inp.shape, path)
        self.embedding_dim = int(out.shape[-1])

    def __call__(self, crops):
        x = to_nchw(crops) if self.channels_first else np.asarray(crops, np.float32)
        return unit_rows(self.session.run([self.output_name], {self.input_name: x})[0])


class TFLiteRunner:
    """A `.tflite` file in the LiteRT interpreter; tensors re-allocated only when the batch changes."""

    kind = "tflite"

    def __init__(self, path, threads=None):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Model {path!r}: no such TFLite file.")
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.source, self.batch = path, None
        shape = [int(s) for s in self.input["shape"]]
        self.channels_first = is_channels_first(shape)
        self.image_size = _image_size(shape, path)
        self.embedding_dim = int(self.output["shape"][-1])

    def __call__(self, crops):
        if len(crops) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        x = to_nchw(crops) if self.channels_first else np.asarray(crops, np.float32)
        if len(x) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(x.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(x)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return unit_rows(self.interpreter.get_tensor(self.output["index"]))

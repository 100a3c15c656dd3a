"""`TFLiteBackend`: a `.tflite` file in the LiteRT interpreter (`ai_edge_litert`), one `EmbeddingBackend` form.

Files with float32 input (`python -m export --tflite`'s float32 / float16 files, and its int8 file
without calibration data) take RGB 0..255. Its calibrated int8 file is full integer with uint8 input
of scale 1 and zero point 0 (`sal_tf/export/tflite.py`): uint8 crops (`BoxEncoder`'s) are fed as
they are, no float conversion; float pixels are rounded to uint8. Any other integer input gets the
pixels quantised with its own scale and zero point, and an integer output is dequantised. NHWC or
NCHW input. Tensors are re-allocated only when the batch size changes (one allocation per batch
size seen: no re-tracing). `threads` go to LiteRT (None: its default, 1 thread). No TensorFlow.
"""

import os

import numpy as np

from sal_tf.inference.backend import EmbeddingBackend, tflite_precision, unit_rows
from sal_tf.inference.onnx_backend import image_size_of, not_a_model
from sal_tf.inference.torch_layout import is_channels_first, to_nchw


def quantise(x, detail):
    """float / uint8 pixels → the input tensor's dtype (its scale and zero point for integer tensors)."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return np.asarray(x, np.float32)
    scale, zero = detail["quantization"]
    if dtype == np.uint8 and x.dtype == np.uint8 and abs(scale - 1) < 1e-4 and zero == 0:
        return x
    info = np.iinfo(dtype)
    return np.clip(np.rint(np.asarray(x, np.float32) / scale + zero), info.min, info.max).astype(dtype)


def dequantise(y, detail):
    """An output tensor as float32 (integer outputs through their scale and zero point)."""
    if np.issubdtype(y.dtype, np.integer):
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * np.float32(scale)
    return np.asarray(y, np.float32)


class TFLiteBackend(EmbeddingBackend):
    """A `.tflite` file run by LiteRT with `threads` threads (see the module docstring)."""

    kind = "tflite"

    def __init__(self, path, threads=None):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Model {path!r}: no such TFLite file.")
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=path, num_threads=threads)
        except (ValueError, RuntimeError) as e:
            raise not_a_model(path, "LiteRT", e) from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None
        shape = [int(s) for s in self.input["shape"]]
        self.channels_first = is_channels_first(shape)
        super().__init__(path, image_size_of(shape, path), self.output["shape"][-1])
        self.threads = threads
        self.integer_input = np.dtype(self.input["dtype"]) != np.float32
        self.precision = "int8" if self.integer_input else tflite_precision(path)  # export's names say it

    def embed_array(self, images):
        if len(images) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        x = to_nchw(images) if self.channels_first else np.asarray(images)
        x = quantise(x, self.input)
        if len(x) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(x.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(x)
        self.interpreter.set_tensor(self.input["index"], np.ascontiguousarray(x))
        self.interpreter.invoke()
        return unit_rows(dequantise(self.interpreter.get_tensor(self.output["index"]), self.output))

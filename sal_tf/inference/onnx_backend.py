"""`ONNXBackend`: an `.onnx` file in ONNX Runtime (CPU), one `EmbeddingBackend` form.

The NHWC file of `python -m export --onnx` (RGB 0..255) or the NCHW file of `--nchw` (the PyTorch
convention, `sal_tf/inference/torch_layout.py`), told apart by the input shape; a foreign NCHW re-ID
model (e.g. a torchreid export) runs too, its rows normalised here. No TensorFlow.
"""

import os

import numpy as np

from sal_tf.inference.backend import ACCEPTED, EmbeddingBackend, unit_rows
from sal_tf.inference.torch_layout import is_channels_first, to_nchw


def image_size_of(shape, source):
    """(H, W) of an input shape [B, H, W, 3] or [B, 3, H, W] with fixed H, W."""
    dims = list(shape[2:4]) if is_channels_first(shape) else list(shape[1:3])
    if not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
        raise ValueError(
            f"{source}: the input {list(shape)} has no fixed image size; expected [B, H, W, 3] or [B, 3, H, W]."
        )
    return tuple(int(d) for d in dims)


def not_a_model(path, runtime, error):
    """The ValueError for a file its runtime cannot read: names the file, the reason and the forms."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return ValueError(f"Model {path!r} is not a model {runtime} can read ({reason}); expected {ACCEPTED}.")


class ONNXBackend(EmbeddingBackend):
    """An `.onnx` file in ONNX Runtime's CPU provider, `threads` intra-op threads."""

    kind = "onnx"

    def __init__(self, path, threads=None):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Model {path!r}: no such ONNX file.")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's InvalidProtobuf / Fail: not an ONNX model
            raise not_a_model(path, "ONNX Runtime", e) from None
        (inp,), out = self.session.get_inputs(), self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        self.channels_first = is_channels_first(inp.shape)
        super().__init__(path, image_size_of(inp.shape, path), out.shape[-1])
        self.threads = threads

    def embed_array(self, images):
        x = to_nchw(images) if self.channels_first else np.asarray(images, np.float32)
        if len(x) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        return unit_rows(self.session.run([self.output_name], {self.input_name: x})[0])

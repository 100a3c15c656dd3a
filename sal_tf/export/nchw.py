"""NCHW variant of an export: the input convention of PyTorch re-ID models, for trackers built on them.

Folder written with `python -m export --nchw` (`export_lib.export(..., nchw_files=True)`):

    nchw/<name>/<version>/
        model.onnx        images float32 [B, 3, H, W] at the model size, B dynamic: RGB / 255,
                          minus the ImageNet mean, divided by its std (`sal_tf/inference/torch_layout.py`)
                          → embedding float32 [B, D], L2-normalised
        parity.json, samples/          as `onnx_export.write_onnx_file` writes them (the samples are
                                       the NCHW inputs), so `python -m export.verify` checks the folder
        tflite/<name>_nchw_float32.tflite, tflite/parity.json      with --tflite as well

The graph undoes the normalisation (x·std + mean, ×255), transposes to NHWC and calls the export's
own `serve_float` (the model, whose first layer applies its caffe preprocessing, and the L2 norm),
so BoxMOT's or torchreid's preprocessing feeds it unchanged. Its parity reference is the published
SavedModel itself, loaded back (`serve_float` on the CPU), on the export's sample images; the files
are converted and checked by `onnx_export` / `tflite` (cosine ≥ 0.9999, max |Δ| ≤ 1e-4 for ONNX)
and the version folder is published atomically (`versioning.publish`).
"""

import os

import numpy as np
import tensorflow as tf

from sal_tf.export import onnx_export, tflite, versioning
from sal_tf.inference.torch_layout import IMAGENET_MEAN, IMAGENET_STD, to_nchw
from sal_tf.utils import write_json

FOLDER = "nchw"
REFERENCE_LABEL = "SavedModel serve_float on CPU"


class NCHWServingModule(tf.Module):
    """`serve_float` on [B, 3, H, W] ImageNet-normalised input around an `EmbeddingServingModule`'s own."""

    def __init__(self, module):
        super().__init__(name="sal_embedding_serving_nchw")
        height, width = module.image_size
        inner = module.serve_float

        @tf.function(
            autograph=False,
            input_signature=[tf.TensorSpec([None, 3, height, width], tf.float32, name=onnx_export.INPUT)],
        )
        def serve_float(images):
            # Constants made inside the graph: captured eager tensors would become extra ONNX inputs.
            mean = tf.constant(np.reshape(IMAGENET_MEAN, [1, 3, 1, 1]), tf.float32)
            std = tf.constant(np.reshape(IMAGENET_STD, [1, 3, 1, 1]), tf.float32)
            pixels = (images * std + mean) * 255.0
            return inner(tf.transpose(pixels, [0, 2, 3, 1]))

        self.serve_float = serve_float
        self.image_size, self.embedding_dim = module.image_size, module.embedding_dim


def saved_model_embeddings(saved_model_dir, images):
    """Embeddings of float32 RGB images [N, H, W, 3] by a written SavedModel's `serve_float`, on the CPU."""
    loaded = tf.saved_model.load(saved_model_dir)
    with tf.device("/cpu:0"):
        return loaded.serve_float(tf.constant(images, tf.float32))[onnx_export.OUTPUT].numpy()


def metadata(module, source=None):
    """The ONNX file's `metadata_props`: its input contract in words."""
    (h, w), dim = module.image_size, module.embedding_dim
    return {
        "input": (
            f"{onnx_export.INPUT}: float32 [B, 3, {h}, {w}], RGB / 255 normalised with ImageNet mean "
            f"{IMAGENET_MEAN} and std {IMAGENET_STD} (resize bilinearly to {h}x{w} first)"
        ),
        "output": f"{onnx_export.OUTPUT}: float32 [B, {dim}], L2-normalised",
        "layout": "NCHW",
        "image_size": f"{h},{w}",
        "embedding_dim": dim,
        **({"source": source} if source else {}),
    }


def publish_nchw(module, export_dir, name, version, images, saved_model_dir, tflite_files=False, source=None):
    """Writes the checked `<export_dir>/nchw/<name>/<version>/` folder; returns (report, model.onnx path).

    Args:
        module: the export's `EmbeddingServingModule`.
        images: float32 RGB sample images [N, H, W, 3] at the model size (the export's samples).
        saved_model_dir: the published SavedModel version, the parity reference.
        tflite_files: also write a checked float32 NCHW TFLite file into `tflite/`.

    Raises:
        onnx_export.ONNXParityError / tflite.TFLiteParityError: a file failed its check; nothing
            of this folder is published.
    """
    wrapped = NCHWServingModule(module)
    reference = saved_model_embeddings(saved_model_dir, images)
    inputs = to_nchw(images)
    report = {}

    def build(tmp):
        report["onnx"] = onnx_export.write_onnx_file(
            wrapped, tmp, inputs, reference, metadata(module, source), reference_label=REFERENCE_LABEL
        )
        if tflite_files:
            report["tflite"] = write_tflite_file(wrapped, os.path.join(tmp, "tflite"), inputs, reference, name)

    _, folder = versioning.publish(os.path.join(export_dir, FOLDER, name), build, version=version)
    return report, os.path.join(folder, onnx_export.MODEL_FILE)


def write_tflite_file(wrapped, folder, inputs, reference, name):
    """The checked `<name>_nchw_float32.tflite` of an `NCHWServingModule` in `folder` (+ parity.json); its report."""
    report = tflite.write_tflite_files(wrapped, folder, inputs, reference, ("float32",), prefix=f"{name}_nchw")
    report["reference"] = REFERENCE_LABEL  # `write_tflite_files` names Keras, its usual reference
    write_json(os.path.join(folder, tflite.REPORT_FILE), report)
    return report

"""Export and serving of SAL models (BUILD.md "Export and serving").

* `python -m export`: SavedModel for TF Serving (+ `models.config`, TFLite and ONNX files);
  library entry `export.export_lib.export`.
* `python -m export.verify <dir | .onnx>`: checks an export in a TensorFlow-only (or, for ONNX, TensorFlow-free) process.
* `python -m export.client`: REST / gRPC client of TF Serving.

This package imports nothing on purpose: `export.verify` must load without Keras.
"""

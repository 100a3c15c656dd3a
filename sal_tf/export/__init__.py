"""Export and serving of SAL models (BUILD.md "Export and serving"), as TF Model Garden keeps
`official/vision/serving`: one package, several serving signatures.

* `sal_tf.export.export_lib.export`: SavedModel for TF Serving (+ `models.config`, TFLite and ONNX
  files); command `python -m export` (`sal_tf.cli.export`, console script `sal-export`).
* `sal_tf.export.verify` (`python -m export.verify <dir | .onnx>`): checks an export in a
  TensorFlow-only (or, for ONNX, TensorFlow-free) process.
* `sal_tf.export.client` (`python -m export.client`): REST / gRPC client of TF Serving.

This package imports nothing on purpose: `verify` must load without Keras.
"""

"""Export and serving of SAL models (SPEC §8).

* `python -m export`: SavedModel for TF Serving (+ `models.config`, TFLite files);
  library entry `export.export_lib.export`.
* `python -m export.verify <dir>`: checks an export in a TensorFlow-only process.
* `python -m export.client`: REST / gRPC client of TF Serving.

This package imports nothing on purpose: `export.verify` must load without Keras.
"""

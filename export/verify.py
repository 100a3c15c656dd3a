"""`python -m export.verify <export_dir>/<name>/<version> | <export_dir>/onnx/<name>/<version>`.

Thin entry point of `sal_tf.export.verify` (TensorFlow only for a SavedModel, ONNX Runtime only
for an ONNX file); see its docstring for the checks.
"""

from sal_tf.export.verify import run

if __name__ == "__main__":
    run()

"""`python -m export --model_dir=runs/market --export_dir=exports --name=sal [--tflite] [--onnx]`.

Thin entry point of `sal_tf.cli.export` (console script `sal-export`); see `--help`.
"""

from sal_tf.cli.export import run

if __name__ == "__main__":
    run()

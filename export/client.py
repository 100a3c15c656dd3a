"""`python -m export.client --server=localhost:8501 --protocol=rest --images=a.jpg,b.jpg`.

Thin entry point of `sal_tf.export.client` (REST / gRPC client of TF Serving); see `--help`.
"""

from sal_tf.export.client import run

if __name__ == "__main__":
    run()

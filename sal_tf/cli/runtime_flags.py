"""The flags of every command that runs the appearance model: how its runtime computes.

`--threads` (the runtime's intra-op threads) and `--precision` (`float32`, or the opt-in `bfloat16`
of the Keras form, `sal_tf.inference.backend.check_precision`), defined once here for `sal-evaluate`,
`sal-embed`, `sal-track`, `sal-mtmc` and `sal-serve` and passed to `sal_tf.inference.forms.open_backend`.
"""

from absl import flags


def define_runtime_flags():
    """Defines --threads and --precision (called by a command's `define_flags`, never at import)."""
    from sal_tf.inference.backend import PRECISIONS

    flags.DEFINE_integer(
        "threads", None, "Threads of the model's runtime (ONNX Runtime, LiteRT; TensorFlow's before it starts; "
        "default: the runtime's)."
    )  # fmt: skip
    flags.DEFINE_enum(
        "precision", "float32", list(PRECISIONS), "Arithmetic of the model: float32, or bfloat16 (opt-in, the Keras "
        "form only, on a CPU with native bfloat16 such as AVX-512 BF16; faster, cosine to float32 > 0.999)."
    )  # fmt: skip

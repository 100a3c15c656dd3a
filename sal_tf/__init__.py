"""SAL-TF: Self-attention Learning for Person Re-identification (Jiang et al., BMVC 2018) in Keras 3."""

__version__ = "0.1.0"

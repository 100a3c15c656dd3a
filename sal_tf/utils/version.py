"""The package's version, in one home: `sal_tf.__version__` and pyproject.toml read it from here, and
any layer may record it (`sal_tf/training/provenance.py`) without importing the package root."""

__version__ = "0.2.0"

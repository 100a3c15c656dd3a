"""Names of a package resolved on first use (PEP 562 module `__getattr__`), so importing it stays cheap.

    # sal_tf/models/__init__.py
    _LAZY = {"build_model": "sal_tf.models.factory", ...}      # name → module that defines it
    __getattr__, __dir__ = lazy_module_attrs(_LAZY, __name__)

`import sal_tf.models` then imports neither TensorFlow nor Keras; `sal_tf.models.build_model` imports
`sal_tf.models.factory` and returns its own object. `deprecated` ({old name: new name}) keeps an old
name working with a `DeprecationWarning` (`sal_tf/evaluation/__init__.py`).
"""

import importlib
import sys
import warnings


def lazy_module_attrs(mapping, module_name, deprecated=None):
    """(`__getattr__`, `__dir__`) of the package `module_name` whose names `mapping` ({name: module}) resolves.

    An unknown name raises `AttributeError` as a plain module does; `dir()` lists the package's globals
    and the lazy names.
    """
    deprecated = dict(deprecated or {})

    def __getattr__(name):
        if name in deprecated:
            warnings.warn(
                f"{module_name}.{name} is renamed {deprecated[name]}; the old name goes in the next release.",
                DeprecationWarning,
                stacklevel=2,
            )
            name = deprecated[name]
        if name in mapping:
            return getattr(importlib.import_module(mapping[name]), name)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[module_name])) | set(mapping))

    return __getattr__, __dir__

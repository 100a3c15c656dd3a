"""Helpers shared by every layer: atomic files, JSON conversion, image extensions, CLI errors.

This package imports nothing else of `sal_tf` (and not TensorFlow), so any module may use it.
"""

from sal_tf.utils.files import (
    IMAGE_EXTENSIONS,
    fsync_folder,
    is_image_file,
    to_jsonable,
    write_atomically,
    write_json,
)

__all__ = ["IMAGE_EXTENSIONS", "fsync_folder", "is_image_file", "to_jsonable", "write_atomically", "write_json"]

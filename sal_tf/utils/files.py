"""Atomic writes (of a file, of a generated folder), JSON conversion and the image file extensions (one home for each)."""

import json
import os
import shutil
import tempfile
import uuid

# Files the parsers, the embed command and the export sample loader take as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def is_image_file(name):
    """True when `name` ends with one of `IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def fsync_folder(folder):
    """fsyncs a folder, so that the names created, renamed or removed in it survive a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path, data):
    """Writes `data` (str or bytes) to `path` through a temporary file, fsync and `os.replace`.

    A reader sees the old file or the new one, never a part; a failure leaves no temporary file.
    The folder is fsynced after the rename, so a returned write survives a crash of the machine.
    """
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(tmp, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_folder(os.path.dirname(os.path.abspath(path)))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def generate_folder_once(cache_dir, name, generate):
    """`<cache_dir>/<name>`, made on first use by `generate(folder)`; the path of the finished folder.

    `generate` writes into a temporary sibling folder that is then renamed into place, so a killed
    generation never leaves a folder that looks complete, and two processes generating at once both
    return the one that won the rename (the demo dataset, `sal_tf/data/demo.py`, and the demo
    sequences, `sal_tf/data/demo_sequences.py`, are cached this way).
    """
    cache_dir = os.path.abspath(os.path.expanduser(cache_dir))
    target = os.path.join(cache_dir, name)
    if os.path.isdir(target):
        return target
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}_tmp_", dir=cache_dir)
    try:
        generate(tmp)
        os.rename(tmp, target)
    except OSError:
        if not os.path.isdir(target):  # not a lost race with another process
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def generate_seeded_folder_once(cache_dir, prefix, generate, seed, options):
    """`generate_folder_once` of `generate(folder, seed=seed, **options)` in `<prefix>_seed<seed>_<key><value>…`
    (the options sorted by name; `verbose` not named): the demo sequences' and cameras' caches."""
    extra = "".join(f"_{k}{v}" for k, v in sorted(options.items()) if k != "verbose")
    return generate_folder_once(
        cache_dir, f"{prefix}_seed{seed}{extra}", lambda folder: generate(folder, seed=seed, **options)
    )


def to_jsonable(obj):
    """`obj` with numpy arrays / scalars (nested in dicts, lists, tuples) turned into Python values."""
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # np.ndarray and np.generic
        return obj.tolist()
    return obj


def write_json(path, obj):
    """Writes `obj` (numpy values allowed) as indented, key-sorted JSON, atomically."""
    write_atomically(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")

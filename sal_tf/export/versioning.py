"""Versioned, atomic publication of export folders (TF Serving layout).

TF Serving watches `<base_path>/` and loads the numeric sub-folders as versions.
A version folder must appear complete or not at all: it is built in a hidden
temporary folder beside the target (`<base_path>/.tmp-<host>-<pid>-<token>`,
which TF Serving ignores: not a number), flushed to disk, then renamed into
place. An existing version is never overwritten.
"""

import os
import shutil
import socket
import uuid

from sal_tf.utils import fsync_folder

TMP_PREFIX = ".tmp-"


def list_versions(base_dir):
    """Sorted numeric version folders under `base_dir` (missing folder → [])."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(n) for n in os.listdir(base_dir) if n.isdigit() and os.path.isdir(os.path.join(base_dir, n)))


def next_version(base_dir):
    """1 + the largest version under `base_dir`, or 1."""
    versions = list_versions(base_dir)
    return versions[-1] + 1 if versions else 1


def publish(base_dir, build, version=None):
    """Builds a version folder with `build(tmp_dir)` and renames it into place.

    Args:
        base_dir: the model's base path (`<export_dir>/<name>`); created if needed.
        build: callable writing the version's files into the (existing, empty)
            folder it is given.
        version: int ≥ 1 to publish exactly that version (error if it exists),
            or None for the next free one (if another writer takes it first,
            the next number is used).

    Returns:
        (version, path of the published folder).

    Raises:
        FileExistsError: `version` was given and already exists.
        Any error of `build`: the temporary folder is removed, nothing is published.
    """
    if version is not None and (not isinstance(version, int) or version < 1):
        raise ValueError(f"`version` must be an int ≥ 1 or None. Received: version={version!r}")
    os.makedirs(base_dir, exist_ok=True)
    remove_stale_tmp(base_dir)
    if version is not None and os.path.exists(os.path.join(base_dir, str(version))):
        raise FileExistsError(
            f"{os.path.join(base_dir, str(version))} exists; versions are never overwritten. "
            "Leave --version unset to take the next free version."
        )
    tmp = os.path.join(base_dir, f"{TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(tmp)
    try:
        build(tmp)
        _fsync_tree(tmp)
        v = version if version is not None else next_version(base_dir)
        while True:
            target = os.path.join(base_dir, str(v))
            try:
                _rename_no_replace(tmp, target)
                break
            except FileExistsError:
                if version is not None:
                    raise FileExistsError(
                        f"{target} appeared while exporting; versions are never overwritten."
                    ) from None
                v += 1
        fsync_folder(base_dir)
        return v, target
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_no_replace(src, dst):
    # os.rename would silently replace an empty `dst` folder; refuse any existing entry.
    if os.path.lexists(dst):
        raise FileExistsError(dst)
    os.rename(src, dst)


def remove_stale_tmp(base_dir):
    """Removes temporary folders left by killed exports of this host; returns their names."""
    host = socket.gethostname()
    removed = []
    for n in os.listdir(base_dir):
        if not n.startswith(f"{TMP_PREFIX}{host}-"):
            continue
        pid = n[len(TMP_PREFIX) + len(host) + 1 :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(base_dir, n), ignore_errors=True)
            removed.append(n)
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_folder(dirpath)

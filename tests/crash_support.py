"""A writer child killed with SIGKILL mid-stream, for the durability tests of the gallery stores
(`tests/test_gallery_store.py`, `tests/test_gallery_ann_index.py`)."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO


def acknowledged_before_kill_9(script, args, wanted, timeout=60):
    """Runs `python -c script *args` from this checkout; `script` prints one JSON list of ids per write
    it saw acknowledged. Reads them until `wanted` ids (or `timeout` s), then SIGKILLs the child.

    Returns the acknowledged ids; fails (with the child's stderr) when fewer than `wanted` came.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    acknowledged = []
    deadline = time.monotonic() + timeout
    try:
        while len(acknowledged) < wanted and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged += json.loads(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert len(acknowledged) >= wanted, child.stderr.read()[-2000:]
    return acknowledged

"""Reruns the backend-agnostic `test_ref_*` tests of every `tests/test_losses_*.py` file under
KERAS_BACKEND=jax, in one subprocess (jax 0.10.2 installs cleanly from PyPI: `jax[cpu]` is a dev
requirement)."""

import glob
import importlib.util
import os
import re
import sys

import keras
import pytest

from tests.conftest import REPO, run_cmd


@pytest.mark.slow  # one fresh process imports keras + jax and compiles every loss (~75 s on 2 cores)
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="this run is already the jax copy")
def test_jax_backend_passes_the_reference_tests():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: `pip install 'jax[cpu]'` to run the jax copy")
    files = sorted(glob.glob(os.path.join(REPO, "tests", "test_losses_*.py")))
    files.remove(os.path.abspath(__file__))
    assert len(files) >= 5, files
    cmd = [sys.executable, "-m", "pytest", *files, "-o", "addopts=", "-q", "-k", "test_ref_", "-p", "no:cacheprovider"]
    cmd += ["-W", "ignore::DeprecationWarning"]
    env = dict(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1")
    result = run_cmd(cmd, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    summary = output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    # At least one passed test per `test_ref_` function (parametrised ones give several): none lost to collection.
    functions = sum(len(re.findall(r"^def test_ref_", open(f).read(), re.M)) for f in files)
    assert functions > 0, files
    assert passed and int(passed.group(1)) >= functions and "skipped" not in summary, output[-2000:]

"""`pip install .` into a fresh venv, then the console scripts run from another folder.

The venv reuses this environment's installed dependencies through a `.pth` file (reinstalling
TensorFlow would take minutes), so what is tested is the package itself: its files, its metadata
and its entry points. CI installs the pinned dependencies from scratch on every run.
"""

import os
import subprocess
import sys
import sysconfig
import tomllib

import pytest

from tests.conftest import REPO


def test_pyproject_dependencies_are_requirements_txt():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    assert "dependencies" in project["project"]["dynamic"]
    scripts = project["project"]["scripts"]
    assert {"sal-train-market", "sal-evaluate", "sal-embed", "sal-search", "sal-export"} <= set(scripts)


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_and_run_console_scripts(tmp_path):
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src"
    for name in files:
        if os.path.exists(os.path.join(REPO, name)):
            os.makedirs(src / os.path.dirname(name), exist_ok=True)
            with open(os.path.join(REPO, name), "rb") as a, open(src / name, "wb") as b:
                b.write(a.read())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    with open(os.path.join(purelib, "sal_tf_test_deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(src)], env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([py, "-c", "import sal_tf; print(sal_tf.__file__, sal_tf.__version__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert where.returncode == 0 and where.stdout.startswith(purelib), (where.stdout, where.stderr[-2000:])
    # Only sal_tf (and its dist-info) is installed: no generic top-level `export` / `trainers` packages.
    installed = {n for n in os.listdir(purelib) if not n.endswith(".pth")}
    assert "sal_tf" in installed and any(n.startswith("sal_tf-") and n.endswith(".dist-info") for n in installed)
    assert not {"export", "trainers", "tests", "benchmarks"} & installed, sorted(installed)
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    for script, target in scripts.items():
        assert target.startswith("sal_tf."), (script, target)
        out = subprocess.run([venv / "bin" / script, "--help"], cwd=elsewhere, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert out.stdout.count("  --") >= 3 and not out.stderr, (script, out.stdout[-2000:], out.stderr[-2000:])
    train_help = subprocess.run([venv / "bin" / "sal-train-market", "--help"], cwd=elsewhere, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "--stage1_epochs" in train_help.stdout
    bad = subprocess.run([venv / "bin" / "sal-evaluate", "--model=nowhere"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr

"""Shared fixtures: one small demo dataset and one trained two-stage tiny run per test session."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cmd(cmd, env=None, timeout=240, cwd=REPO):
    """Runs a command as a user would (from the repository, the package importable)."""
    full_env = {**os.environ, "PYTHONPATH": REPO, **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


# The tiny preset with one bottleneck block per stage (ResNet14): what a test builds or trains when the
# backbone's depth is not what it tests (half the trace time of ResNet50 on 2 cores).
QUICK_DEPTH = 14


def tiny_model(num_classes, **overrides):
    """A `SALModel` of the tiny preset at `QUICK_DEPTH` (random weights)."""
    from sal_tf.models import build_model

    return build_model("tiny", num_classes=num_classes, verbose=False, **{"depth": QUICK_DEPTH, **overrides})


def make_config(model_dir, **overrides):
    """A `TrainConfig` of the tiny preset at `QUICK_DEPTH` that trains in seconds (1 epoch, 2 steps per stage)."""
    from sal_tf.training.config import StageConfig, TrainConfig

    base = dict(
        model_dir=str(model_dir),
        dataset="market1501",
        preset="tiny",
        depth=QUICK_DEPTH,
        backbone_weights="none",
        stage1=StageConfig(epochs=1, learning_rate=0.05, batch_size=16),
        stage2=StageConfig(epochs=1, learning_rate=1e-3, batch_size=16, sampling="pk", num_instances=4),
        max_steps_per_epoch=2,
        rerank=False,
        verbose=0,
        checkpoint_every_steps=0,
    )
    base.update(overrides)
    return TrainConfig(**base)


def trainer_cmd(data_root, model_dir, *extra):
    """`python -m trainers.market` on the demo data: tiny ResNet14, 2 + 1 epochs of 3 steps, `extra` flags last."""
    return [
        sys.executable,
        "-m",
        "trainers.market",
        f"--data_dir={data_root}",
        f"--model_dir={model_dir}",
        "--preset=tiny",
        f"--depth={QUICK_DEPTH}",
        "--backbone_weights=none",
        "--batch_size=16",
        "--num_ids=4",
        "--stage1_epochs=2",
        "--stage2_epochs=1",
        "--max_steps_per_epoch=3",
        "--norerank",
        "--verbose=0",
        "--stage1_lr=0.05",
        *extra,
    ]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A 12 + 8 identity demo dataset in the Market-1501 layout."""
    from sal_tf.data.demo import generate_demo_dataset

    root = str(tmp_path_factory.mktemp("demo") / "Market-1501-v15.09.15")
    generate_demo_dataset(root, seed=3, num_train_ids=12, num_test_ids=8)
    return root


@pytest.fixture(scope="session")
def data(data_root):
    from sal_tf.data import load_dataset

    return load_dataset("market1501", data_root, verbose=False)


# The small generated cameras of the multi-camera tests (tests/test_mtmc_*.py): 2 cameras × 150 frames of 90×160,
# 4 people (3 of them walk on into camera 2), rendered once per session in a few seconds.
MTMC_SIZE, MTMC_FRAMES = (90, 160), 150


@pytest.fixture(scope="session")
def mtmc_cameras(tmp_path_factory):
    from sal_tf.data import demo_cameras

    root = str(tmp_path_factory.mktemp("mtmc_cameras"))
    demo_cameras.generate_cameras(root, seed=2, cameras=2, frames=MTMC_FRAMES, people=4, size=MTMC_SIZE, verbose=False)
    return root


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, data):
    """`--stage=1` then `--stage=2` in one model dir, trained once per test session (all xdist workers).

    Returns dict(run_dir, stage1_weights, stage2_start_weights, results): stage 1's saved weights,
    the stage-2 model's weights before its first step, and what the stage-2 run returned. The first
    worker to ask trains it under a file lock in the workers' shared temporary folder; the others
    read it from there (tests only read the run).
    """
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else None
    folder = (shared or tmp_path_factory.mktemp("trained")) / "trained_run"
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "fixture.json").exists():
            _train_run(folder, data)
    with open(folder / "fixture.json") as f:
        results = json.load(f)
    weights = np.load(folder / "fixture_weights.npz")
    count = len(weights.files) // 2
    return dict(
        run_dir=folder / "run",
        stage1_weights=[weights[f"stage1_{i}"] for i in range(count)],
        stage2_start_weights=[weights[f"start2_{i}"] for i in range(count)],
        results=results,
    )


def _train_run(folder, data):
    import keras

    from sal_tf.training.experiment import Experiment
    from sal_tf.training.tasks import ReIDTask
    from sal_tf.utils import to_jsonable

    folder.mkdir(parents=True, exist_ok=True)
    run_dir = folder / "run"
    knobs = dict(log_every_steps=1, rerank=True, eval_untrained=True)
    cfg1 = make_config(run_dir, stage="1", **knobs)
    Experiment(cfg1, ReIDTask(cfg1, data)).run()
    stage1 = keras.saving.load_model(str(run_dir / "stage1.keras"), compile=False).get_weights()
    cfg2 = make_config(run_dir, stage="2", **knobs)
    experiment = Experiment(cfg2, ReIDTask(cfg2, data))
    start2 = experiment.build_model(cfg2.stages()[0]).get_weights()
    results = experiment.run()
    arrays = {f"stage1_{i}": w for i, w in enumerate(stage1)} | {f"start2_{i}": w for i, w in enumerate(start2)}
    np.savez(folder / "fixture_weights.npz", **arrays)
    with open(folder / "fixture.json", "w") as f:  # written last: its presence means the run is whole
        json.dump(to_jsonable(results), f)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: the marks added here count
def pytest_collection_modifyitems(config, items):
    """Marks every test that needs `trained_run` slow (it trains two stages), then orders the files:
    heaviest first, so that xdist's two workers finish together (longest-first scheduling).

    A file's weight is its number of `slow` tests, plus one when it uses `trained_run`. The two
    files the workers start with are not both `trained_run` users: the second worker then finds the
    run trained instead of waiting for it. pytest.ini turns off xdist's own reordering (by test count).
    """
    weight, trained = {}, set()
    for item in items:
        if "trained_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
            trained.add(item.path)
        weight[item.path] = weight.get(item.path, 0) + (item.get_closest_marker("slow") is not None)
    files = sorted(weight, key=lambda path: -(weight[path] + (path in trained)))  # stable: name order kept
    others = [path for path in files if path not in trained]
    if len(files) > 2 and files[0] in trained and files[1] in trained and others:
        files.remove(others[0])
        files.insert(1, others[0])
    rank = {path: i for i, path in enumerate(files)}
    items.sort(key=lambda item: rank[item.path])

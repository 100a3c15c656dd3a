"""Trainer: stages, strategies, resume after SIGKILL, NaN stop, TensorBoard, model_dir safety.

All runs use the `tiny` preset on a small demo dataset with a few steps per epoch.
Multi-process cases run `python -m trainers.market` in subprocesses, as a user would.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, make_config, run_cmd


def trainer_cmd(data_root, model_dir, *extra):
    return [
        sys.executable,
        "-m",
        "trainers.market",
        f"--data_dir={data_root}",
        f"--model_dir={model_dir}",
        "--preset=tiny",
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


def experiment_of(config, data, strategy=None):
    from sal_tf.training.experiment import Experiment
    from sal_tf.training.tasks import ReIDTask

    return Experiment(config, ReIDTask(config, data), strategy=strategy)


def test_stage2_alone_without_stage1_is_a_clear_error(tmp_path, data):
    with pytest.raises(FileNotFoundError) as err:
        experiment_of(make_config(tmp_path / "run", stage="2"), data).run()
    msg = str(err.value)
    assert "stage1.keras" in msg and "--stage=1" in msg


def test_stage2_starts_from_stage1_weights_and_results_written(trained_run):
    run_dir, stage1, start2 = trained_run["run_dir"], trained_run["stage1_weights"], trained_run["stage2_start_weights"]
    results = trained_run["results"]
    assert len(stage1) == len(start2)
    for a, b in zip(stage1, start2):
        np.testing.assert_array_equal(a, b)
    assert os.path.exists(run_dir / "stage2.keras")
    stored = json.loads((run_dir / "results.json").read_text())
    for key in ("untrained", "stage1", "stage2"):
        assert 0.0 <= stored[key]["mAP"] <= 1.0 and stored[key]["num_valid_queries"] > 0
    assert results["stage2"]["mAP"] == stored["stage2"]["mAP"]


def test_model_dir_with_other_config_is_refused(tmp_path, data):
    from sal_tf.training.experiment import ConfigMismatch

    experiment_of(make_config(tmp_path / "run"), data)
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(ConfigMismatch) as err:
        experiment_of(make_config(tmp_path / "run", loss="softmax+triplet", sac=False), data)
    lines = [line.strip() for line in str(err.value).splitlines() if line.startswith("  ")]
    assert lines == ["loss: stored 'softmax+quadruplet', now 'softmax+triplet'", "sac: stored True, now False"]
    assert (tmp_path / "run" / "config.json").read_text() == before
    experiment_of(make_config(tmp_path / "run", strategy="default", eval_every=3), data)  # runtime knobs may change


def test_distributed_pk_slices_hold_whole_identities():
    """Each replica of a P×K global batch gets P/R whole identities (contiguous slices)."""
    code = r"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from sal_tf.training.distribute import distribute_global_batches
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
P, K = 6, 4
labels = tf.constant([[p * 10 + (b % 3) for p in range(P) for _ in range(K)] for b in range(3)], tf.int32)
images = tf.zeros([3, P * K, 2, 2, 3])
ds = tf.data.Dataset.from_tensor_slices((images, labels))
dist = distribute_global_batches(strategy, lambda: ds)
for imgs, labs in dist:
    parts = [t.numpy().tolist() for t in strategy.experimental_local_results(labs)]
    assert len(parts) == 2 and all(len(p) == P * K // 2 for p in parts), parts
    ids = [set(p) for p in parts]
    assert not (ids[0] & ids[1]), parts
    for p in parts:
        assert all(p.count(i) == K for i in set(p)), p
print("OK")
"""
    out = run_cmd([sys.executable, "-c", code])
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.slow
def test_mirrored_two_devices_matches_default(tmp_path, data_root):
    """One stage-1 step (softmax + SAC, synchronised BN) on 2 replicas equals the 1-device step.

    The tiny net at random init is numerically touchy: merely permuting the rows of the
    batch on one device changes the weight update by ~1% (float32 sums in another order,
    amplified by BN over small activations). So the 2-replica update is held to at most 2x
    that measured reordering noise, and a control run with per-replica (unsynchronised) BN
    must miss the bound by far, which shows the comparison can fail.
    """
    code = rf"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, "{REPO}")
from tests.conftest import make_config
from sal_tf.training.config import StageConfig
from sal_tf.data import load_dataset
from sal_tf.training.distribute import distribute_global_batches
from sal_tf.training.experiment import Experiment, set_sync_batch_norm
from sal_tf.training.loop import LoopOptions, make_train_step
from sal_tf.training.optimizer import build_optimizer
from sal_tf.training.tasks import ReIDTask
data = load_dataset("market1501", "{data_root}", verbose=False)
perm = np.random.RandomState(0).permutation(16)
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])  # one instance: collective keys
runs = {{}}
for name in ("default", "permuted", "mirrored", "mirrored_local_bn"):
    strategy = mirrored if name.startswith("mirrored") else tf.distribute.get_strategy()
    cfg = make_config("{tmp_path}/" + name, stage="1", pad_crop=False, seed=7,
                      stage1=StageConfig(epochs=1, learning_rate=1e-2, batch_size=16))
    task = ReIDTask(cfg, data)
    stage = cfg.stages()[0]
    model = Experiment(cfg, task, strategy=strategy).build_model(stage)
    with strategy.scope():
        opt = build_optimizer(stage.config, 1)
        opt.build(model.trainable_variables)
    set_sync_batch_norm(model, name == "mirrored")
    step = make_train_step(strategy, model, task.build_losses(stage), opt, LoopOptions())
    ds = task.build_inputs(stage, 0).take(1)
    if name == "permuted":
        ds = ds.map(lambda x, y: (tf.gather(x, perm), tf.gather(y, perm)))
    before = [v.numpy() for v in model.trainable_variables]
    terms = {{k: float(v) for k, v in step(iter(distribute_global_batches(strategy, lambda: ds))).items()}}
    # conv biases feed a BN: their true gradient is 0, what they get is rounding noise.
    update = np.concatenate([(v.numpy() - b).ravel() for v, b in zip(model.trainable_variables, before)
                             if not v.path.endswith("conv/bias")])
    runs[name] = (terms, update)
ref = runs["default"][1]
print("RUNS" + json.dumps({{k: dict(terms, update_diff=float(np.linalg.norm(u - ref) / np.linalg.norm(ref)))
                           for k, (terms, u) in runs.items()}}))
"""
    out = run_cmd([sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads(out.stdout.split("RUNS", 1)[1])
    default, mirrored = runs["default"], runs["mirrored"]
    for key in ("loss", "softmax", "sac"):
        assert abs(default[key] - mirrored[key]) <= 1e-5 * max(1.0, abs(default[key])), (key, runs)
    bound = max(2 * runs["permuted"]["update_diff"], 1e-3)
    assert mirrored["update_diff"] <= bound, runs
    assert runs["mirrored_local_bn"]["update_diff"] > 10 * bound, runs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_two_processes_chief_writes(tmp_path, data_root):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        cmd = trainer_cmd(
            data_root,
            tmp_path / "mw",
            "--strategy=multi_worker",
            "--stage=1",
            "--stage1_epochs=1",
            "--max_steps_per_epoch=2",
            "--checkpoint_every_steps=0",
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO, "TF_CONFIG": tf_config}
        procs.append(
            subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, se) in zip(procs, outs):
        assert p.returncode == 0, se[-3000:]
    ckpts = glob.glob(str(tmp_path / "mw" / "stage1" / "ckpt-*.index"))
    assert len(ckpts) == 1, ckpts
    assert not glob.glob(str(tmp_path / "mw" / "stage1" / ".worker*"))
    assert os.path.exists(tmp_path / "mw" / "stage1.keras")


def _final_weights(path):
    import keras

    return keras.saving.load_model(str(path), compile=False).get_weights()


@pytest.mark.slow
def test_sigkill_resume_matches_uninterrupted_run(tmp_path, data_root):
    extra = ("--stage=1", "--deterministic", "--checkpoint_every_steps=2", "--noeval_untrained")
    ref = run_cmd(trainer_cmd(data_root, tmp_path / "ref", *extra))
    assert ref.returncode == 0, ref.stderr[-3000:]

    cmd = trainer_cmd(data_root, tmp_path / "killed", *extra)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "killed" / "stage1" / "checkpoint"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert state.exists(), "no checkpoint was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "stage1.keras").exists(), "killed too late to test a resume"
    resumed = run_cmd(cmd + ["--verbose=1"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming stage1" in resumed.stdout
    for a, b in zip(
        _final_weights(tmp_path / "ref" / "stage1.keras"), _final_weights(tmp_path / "killed" / "stage1.keras")
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_nan_loss_stops_with_checkpoint_intact(tmp_path, data_root):
    out = run_cmd(
        trainer_cmd(
            data_root,
            tmp_path / "nan",
            "--stage=1",
            "--stage1_lr=1e12",
            "--checkpoint_every_steps=1",
            "--stage1_epochs=3",
            "--noeval_untrained",
        )
    )
    assert out.returncode == 3, (out.returncode, out.stderr[-2000:])
    assert "loss became" in out.stderr and "last good checkpoint" in out.stderr
    assert not (tmp_path / "nan" / "stage1.keras").exists()

    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(tmp_path / "nan" / "stage1"))
    if state is not None:  # a checkpoint from before the divergence must be readable and finite
        reader = tf.train.load_checkpoint(state.model_checkpoint_path)
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                assert np.isfinite(value).all(), name


def test_tensorboard_has_scalars_and_images(trained_run):
    import tensorflow as tf

    run_dir = trained_run["run_dir"]
    tags = set()
    for path in glob.glob(str(run_dir / "tensorboard" / "*" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                tags.add(v.tag)
    for tag in (
        "train/loss",
        "train/softmax",
        "train/sac",
        "train/quadruplet",
        "train/accuracy",
        "train/learning_rate",
        "train/images_per_second",
        "train/quadruplet_active_1",
        "stage1/mAP",
        "stage2/rank1",
        "stage2_rerank/mAP",
        "untrained/mAP",
        "attention/stage4_stage5_stage6",
        "stage2/rank_lists",
    ):
        assert tag in tags, (tag, sorted(tags))


def test_help_lists_every_training_flag_with_defaults():
    out = run_cmd([sys.executable, "-m", "trainers.market", "--help"])
    assert out.returncode == 1, out.stderr[-2000:]  # absl's --help exits with status 1
    text = out.stdout
    for name in (
        "data_dir",
        "stage",
        "strategy",
        "loss",
        "dilation",
        "multi_level",
        "sac",
        "backbone_weights",
        "stage1_epochs",
        "stage2_lr",
        "num_ids",
        "mixed_precision",
        "jit_compile",
        "deterministic",
        "checkpoint_every_steps",
        "eval_every",
    ):
        assert f"--{name}" in text or f"--[no]{name}" in text, name
    assert "--stage: <1|2|all>: Training stage(s) to run.\n    (default: 'all')" in text

"""`sal_tf/training/distribute.py`: identity-whole replica slices, one step on 2 replicas equal to one
device, and two worker processes (`--strategy=multi_worker`) where only the chief writes."""

import glob
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cmd, trainer_cmd


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


# Over 60 lines: most of it is the script of a child process (two logical CPU devices must be configured
# before TensorFlow starts), kept whole so the four runs read side by side.
@pytest.mark.slow
def test_mirrored_two_devices_matches_default(tmp_path, data_root):
    """One stage-1 step (softmax + SAC, synchronised BN) on 2 replicas equals the 1-device step.

    The tiny net at random init is numerically touchy: permuting the rows of the batch on one
    device changes the weight update by float32 summation order (about 1e-5 of it at depth 14, up
    to ~1% at depth 50, amplified by BN over small activations), and synchronised BN computes the
    batch variance from per-replica sums (measured: 0.16% of the update at depth 14). So the
    2-replica update is held to max(2x the reordering noise, 1%), and a control run with
    per-replica (unsynchronised) BN must miss that bound by 10x (measured: 93%), which shows the
    comparison can fail.
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
    if name == "permuted":  # the default run's model and traced step, back at their initial state
        for v, value in zip([*model.variables, *opt.variables], initial):
            v.assign(value)
    else:
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
        initial = [v.numpy() for v in [*model.variables, *opt.variables]]
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
    bound = max(2 * runs["permuted"]["update_diff"], 1e-2)
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

"""Results a researcher can trust: re-ranking on the peers' gallery, evaluation data checked before
training, the model saved before it is evaluated, fresh results when evaluation settings change, and
readable command-line errors. (The optimiser's update rule: tests/test_training_optimizer.py.)"""

import os
import shutil
import sys

import numpy as np
import pytest

from tests.conftest import QUICK_DEPTH, make_config, run_cmd


def test_reranked_scores_use_the_junk_free_gallery():
    """End-to-end re-ranked mAP = the classic algorithm on the gallery without pid −1 (torchreid / fast-reid)."""
    from sal_tf.data import Record
    from sal_tf.evaluation import distance_matrix, evaluate_rank
    from sal_tf.evaluation.reid import evaluate_embeddings
    from sal_tf.evaluation.rerank_classic import classic_re_ranking

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(10, 16))
    q_pid = np.repeat(np.arange(10), 2)
    g_pid = np.concatenate([np.repeat(np.arange(10), 4), np.full(30, -1)])  # 30 junk images near the ids

    def noisy(pids):
        ids = np.where(pids < 0, rng.integers(0, 10, len(pids)), pids)
        return centres[ids] + rng.normal(scale=1.6, size=(len(pids), 16))

    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    qf, gf = unit(noisy(q_pid)), unit(noisy(g_pid))
    q_cam, g_cam = np.zeros(len(q_pid), int), np.ones(len(g_pid), int)
    query = [Record(f"q{i}", int(p), 0) for i, p in enumerate(q_pid)]
    gallery = [Record(f"g{i}", int(p), 1) for i, p in enumerate(g_pid)]
    out = evaluate_embeddings(qf, gf, query, gallery, rerank=True)

    keep = g_pid != -1
    d = lambda a, b: distance_matrix(a, b).astype(np.float64)  # noqa: E731
    classic = classic_re_ranking(d(qf, gf[keep]), d(qf, qf), d(gf[keep], gf[keep]))
    expected = evaluate_rank(classic, q_pid, g_pid[keep], q_cam, g_cam[keep]).mAP
    with_junk = classic_re_ranking(d(qf, gf), d(qf, qf), d(gf, gf))
    assert out["rerank"]["mAP"] == pytest.approx(expected, abs=1e-6)
    assert abs(evaluate_rank(with_junk, q_pid, g_pid, q_cam, g_cam).mAP - expected) > 1e-4  # junk matters


@pytest.mark.slow
def test_corrupt_query_image_stops_before_training_naming_the_file(tmp_path, data_root):
    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    victim = sorted((root / "query").iterdir())[3]
    victim.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    model_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "trainers.market", f"--data_dir={root}", f"--model_dir={model_dir}",
           "--preset=tiny", f"--depth={QUICK_DEPTH}", "--backbone_weights=none", "--batch_size=16", "--num_ids=4", "--verbose=0"]  # fmt: skip
    out = run_cmd(cmd)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.startswith("error: ") and victim.name in out.stderr and "--drop_bad_eval_images" in out.stderr
    assert "Traceback" not in out.stderr and "oneDNN" not in out.stderr and "cuInit" not in out.stderr
    assert not (model_dir / "stage1").exists()  # nothing trained

    from sal_tf.data import load_dataset

    kept = load_dataset("market1501", str(root), verbose=False, drop_bad_eval_images=True)
    assert kept.skipped_files["undecodable_query"] == 1 and str(victim) not in [r.path for r in kept.query]


@pytest.mark.slow
def test_model_is_saved_before_it_is_evaluated_and_evaluated_on_rerun(tmp_path, data):
    from sal_tf.training.experiment import Experiment
    from sal_tf.training.tasks import ReIDTask

    cfg = make_config(tmp_path / "run", stage="1", loss="softmax")
    task = ReIDTask(cfg, data)
    task.evaluate = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("evaluation crashed"))
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        Experiment(cfg, task).run()
    assert (tmp_path / "run" / "stage1.keras").exists()
    stamp = os.path.getmtime(tmp_path / "run" / "stage1.keras")
    results = Experiment(cfg, ReIDTask(cfg, data)).run()
    assert 0 <= results["stage1"]["mAP"] <= 1 and os.path.getmtime(tmp_path / "run" / "stage1.keras") == stamp


@pytest.mark.slow
def test_other_evaluation_settings_re_evaluate_the_finished_stages(tmp_path, trained_run, data):
    from sal_tf.training.experiment import Experiment
    from sal_tf.training.tasks import ReIDTask

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run["run_dir"], run_dir)
    before = trained_run["results"]
    stamp = os.path.getmtime(run_dir / "stage2.keras")
    cfg = make_config(run_dir, stage="all", rerank=False, flip_eval=True)
    again = Experiment(cfg, ReIDTask(cfg, data)).run()
    for stage in ("stage1", "stage2"):
        assert before[stage]["eval_settings"]["flip"] is False and "rerank" in before[stage]
        assert again[stage]["eval_settings"] == cfg.eval_settings() and "rerank" not in again[stage]
        assert again[stage]["train_seconds"] == before[stage]["train_seconds"]  # not retrained
    assert os.path.getmtime(run_dir / "stage2.keras") == stamp
    assert again["stage2"]["mAP"] != before["stage2"]["mAP"]  # flip averaging changes the embeddings
    same = Experiment(cfg, ReIDTask(cfg, data)).run()  # same settings: stored results reused
    assert same["stage2"] == again["stage2"]


@pytest.mark.slow
def test_bad_flags_are_one_error_line_without_traceback(tmp_path):
    out = run_cmd([sys.executable, "-m", "trainers.market", f"--data_dir={tmp_path / 'missing'}", "--verbose=0"])
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("error: ") and str(tmp_path / "missing") in out.stderr
    out = run_cmd([sys.executable, "-m", "trainers.market", "stage2"])
    assert out.returncode == 2 and "unexpected arguments ['stage2']" in out.stderr and "Traceback" not in out.stderr

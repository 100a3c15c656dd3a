"""`sal-evaluate`: a model trained on one dataset evaluated on another, as a user runs it."""

import json
import os
import shutil
import sys

import numpy as np
import pytest

from tests.conftest import run_cmd


def market_to_duke(market_root, duke_root):
    """Copies a Market-1501-layout tree into DukeMTMC-reID names (`0005_c2_f0046985.jpg`)."""
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        os.makedirs(os.path.join(duke_root, split))
        for i, name in enumerate(sorted(os.listdir(os.path.join(market_root, split)))):
            pid, cam = name.split("_")[:2]
            if pid.startswith("-1") or pid == "0000":
                continue  # Duke has no junk / distractor files
            target = f"{int(pid):04d}_c{cam[1]}_f{i:07d}.jpg"
            shutil.copy(os.path.join(market_root, split, name), os.path.join(duke_root, split, target))


@pytest.fixture(scope="module")
def duke_root(data_root, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("duke") / "DukeMTMC-reID")
    market_to_duke(data_root, root)
    return root


@pytest.mark.slow
def test_evaluate_a_market_model_on_duke(trained_run, duke_root, tmp_path):
    from sal_tf.data import load_dataset
    from sal_tf.evaluation.reid import evaluate_model
    from sal_tf.models import load_model as load_keras_model

    run_dir = trained_run["run_dir"]
    config_before = (run_dir / "config.json").read_text()
    output = tmp_path / "eval" / "market_to_duke.json"
    first_query = sorted(os.listdir(os.path.join(duke_root, "query")))[0]
    cmd = [sys.executable, "-m", "sal_tf.cli.evaluate", f"--model={run_dir}", "--dataset=duke",
           f"--data_dir={duke_root}", f"--output={output}", f"--queries=1,{first_query}", "--verbose=0"]  # fmt: skip
    out = run_cmd(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(output.read_text())
    assert res["dataset"] == "dukemtmc" and res["model"].endswith("stage2.keras")
    assert 0 <= res["mAP"] <= 1 and "rerank" in res and res["num_valid_queries"] > 0
    assert res["rank_list_queries"][1].endswith(first_query) and os.path.exists(res["rank_lists"])
    assert (run_dir / "config.json").read_text() == config_before  # no training config read or changed

    # The same numbers as the trainer's evaluation code path, in process.
    from sal_tf.data import pipelines

    data = load_dataset("dukemtmc", duke_root, verbose=False)
    model = load_keras_model(str(run_dir / "stage2.keras"))
    size = tuple(model.image_size)
    ref, picture = evaluate_model(
        model,
        pipelines.build_eval_dataset(data.query, size, 128),
        pipelines.build_eval_dataset(data.gallery, size, 128),
        data.query,
        data.gallery,
        verbose=False,
    )
    assert picture is None  # no rank-list queries asked for
    for key in ("mAP", "mINP", "rank1"):
        assert res[key] == pytest.approx(ref[key], abs=1e-6)
        assert res["rerank"][key] == pytest.approx(ref["rerank"][key], abs=1e-6)

    again = run_cmd(cmd)  # the results file is the user's: never overwritten silently
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


def test_select_queries_by_index_and_name():
    from sal_tf.data import Record
    from sal_tf.inference.evaluate import select_queries

    query = [Record(f"/d/query/{i:04d}_c1s1_000001_00.jpg", i, 0) for i in range(10)]
    assert select_queries("", query) == list(np.linspace(0, 9, 4).astype(int))
    assert select_queries("3,0007_c1s1_000001_00.jpg", query) == [3, 7]
    assert select_queries("none", query) == []
    with pytest.raises(ValueError, match="out of range"):
        select_queries("12", query)
    with pytest.raises(ValueError, match="neither a query index"):
        select_queries("nobody.jpg", query)


@pytest.mark.slow
def test_evaluate_a_savedmodel_equals_the_keras_model(trained_run, data, tmp_path):
    """The exported SavedModel scores the same mAP as its .keras source (the evaluation code path is shared)."""
    from sal_tf.export import export_lib
    from sal_tf.inference.evaluate import evaluate_dataset
    from sal_tf.inference.loading import load_embedder
    from sal_tf.models import load_model as load_keras_model

    keras_file = str(trained_run["run_dir"] / "stage2.keras")
    export_lib.export(load_keras_model(keras_file), str(tmp_path / "exports"), "sal", verify=False)
    saved = load_embedder(str(tmp_path / "exports" / "sal" / "1"))
    assert saved.kind == "saved_model"
    from sal_tf.data import pipelines
    from sal_tf.evaluation import extract_features
    from sal_tf.inference.evaluate import feature_model

    keras_form = load_embedder(keras_file)
    images = pipelines.build_eval_dataset(data.gallery, keras_form.image_size, 64)
    fa, fb = (extract_features(feature_model(e), images, verbose=False) for e in (keras_form, saved))
    np.testing.assert_allclose(fa, fb, atol=1e-5)  # graph-level float differences only
    a, _ = evaluate_dataset(keras_form, data, rerank=False, verbose=False)
    b, _ = evaluate_dataset(saved, data, rerank=False, verbose=False)
    for key in ("mAP", "mINP", "rank1", "rank5"):  # ~1e-6 embedding noise may swap a near-tie
        assert a[key] == pytest.approx(b[key], abs=2e-3)

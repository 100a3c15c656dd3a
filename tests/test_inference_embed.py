"""Embedding image files: sources (folder / glob / CSV), ids from names, corrupt files skipped, .npz."""

import os
import sys

import numpy as np
import pytest
from PIL import Image

import sal_tf
from sal_tf.data import pipelines
from sal_tf.inference import embedding_files, sources
from tests.conftest import run_cmd, tiny_model

GOOD = {  # name → (height, width): any size is resized to the model's
    "0002_c1s1_000451_03.jpg": (128, 64),
    "sub/0005_c2_f0046985.jpg": (90, 40),
    "sub/deeper/0007_c3s1_000001_01.png": (64, 32),
}
CORRUPT = "sub/0009_c1s1_000001_01.jpg"


def _write_tree(root):
    rng = np.random.default_rng(0)
    for name, (h, w) in GOOD.items():
        os.makedirs(os.path.dirname(root / name), exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3)).astype(np.uint8)).save(root / name)
    (root / CORRUPT).write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.jpg").write_bytes(b"")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("embed")
    model_file = str(base / "model.keras")
    tiny_model(10).save(model_file)
    images = base / "images"
    _write_tree(images)
    return {"model": model_file, "embedder": sal_tf.load_embedder(model_file), "images": images, "base": base}


def test_parse_ids_follows_the_dataset_parsers():
    assert sources.parse_ids("a/0002_c1s1_000451_03.jpg") == (2, 0)
    assert sources.parse_ids("0005_c2_f0046985.jpg") == (5, 1)
    assert sources.parse_ids("-1_c3s1_000001_00.jpg") == (-1, 2)
    assert sources.parse_ids("holiday.jpg") is None


def test_sources_folder_glob_csv(tmp_path):
    _write_tree(tmp_path)
    folder = sources.list_images(str(tmp_path))
    assert folder.paths == sorted(str(tmp_path / n) for n in [*GOOD, CORRUPT])
    assert folder.ids_from == "file names" and folder.pids == [2, 5, 9, 7] and folder.camids == [0, 1, 0, 2]
    globbed = sources.list_images(str(tmp_path / "sub" / "**" / "*.png"))
    assert globbed.paths == [str(tmp_path / "sub/deeper/0007_c3s1_000001_01.png")]
    (tmp_path / "list.csv").write_text("path,person_id,camera_id\nsub/0005_c2_f0046985.jpg,41,3\n\nnope.jpg,1,0\n")
    listed = sources.list_images(str(tmp_path / "list.csv"))
    assert listed.paths == [str(tmp_path / "sub/0005_c2_f0046985.jpg"), str(tmp_path / "nope.jpg")]
    assert (listed.pids, listed.camids, listed.ids_from) == ([41, 1], [3, 0], "csv")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "holiday.png")
    assert sources.list_images(str(tmp_path)).pids is None  # not every name parses: no ids
    with pytest.raises(FileNotFoundError, match="--images: .* does not exist"):
        sources.list_images(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no image files"):
        sources.list_images(str(tmp_path / "*.gif"))
    (tmp_path / "bad.csv").write_text("file,id\na.jpg,1\n")
    with pytest.raises(ValueError, match="path,person_id,camera_id"):
        sources.list_images(str(tmp_path / "bad.csv"))


def test_embed_skips_a_corrupt_file_and_matches_the_embedder(setup, tmp_path, capsys):
    embedder, root = setup["embedder"], setup["images"]
    images = sources.list_images(str(root))
    result = embedding_files.embed_images(embedder, images, batch_size=2)
    good = sorted(str(root / n) for n in GOOD)
    assert result.paths == good and result.skipped == [str(root / CORRUPT)]
    assert result.embeddings.shape == (3, 128) and result.embeddings.dtype == np.float32
    pixels = np.stack([pipelines.load_image(p, embedder.image_size).numpy() for p in good])
    np.testing.assert_allclose(result.embeddings, embedder(pixels), atol=1e-6)
    np.testing.assert_array_equal(result.pids, [2, 5, 7])
    np.testing.assert_array_equal(result.camids, [0, 1, 2])
    assert "3/4 images" not in capsys.readouterr().err  # the bar ends at the total
    out = str(tmp_path / "e.npz")
    embedding_files.save_npz(out, result)
    back = embedding_files.load_npz(out)
    np.testing.assert_array_equal(back.embeddings, result.embeddings)
    assert back.paths == good and back.skipped == result.skipped and back.model == setup["model"]
    np.testing.assert_array_equal(back.pids, result.pids)
    with pytest.raises(FileExistsError, match="--overwrite"):
        embedding_files.save_npz(out, result)


def _cli(args, cwd):
    cmd = [sys.executable, "-m", "sal_tf.cli.embed", *args]
    return run_cmd(cmd, cwd=cwd)


@pytest.mark.slow  # a fresh process loads TensorFlow and the model (~20-30 s on 2 loaded cores)
def test_embed_cli_reports_skipped_files(setup):
    out = _cli([f"--model={setup['model']}", "--images=images", "--output=o.npz"], setup["base"])
    assert out.returncode == 0, out.stderr
    assert "Embedded 3 of 4 images" in out.stdout and "Skipped 1" in out.stdout and CORRUPT in out.stdout
    assert "4/4 images" in out.stderr  # progress: full lines when stderr is not a terminal
    with np.load(setup["base"] / "o.npz") as data:
        assert data["embeddings"].shape == (3, 128) and list(data["pids"]) == [2, 5, 7]


def test_embed_cli_bad_input_is_an_error_line_and_exit_2(tmp_path):
    (tmp_path / "o.npz").write_bytes(b"keep me")
    out = _cli(["--model=m.keras", "--images=images", "--output=o.npz"], tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "error: --output 'o.npz' exists; pass --overwrite to replace it."
    assert (tmp_path / "o.npz").read_bytes() == b"keep me"


@pytest.mark.parametrize("command", ["sal_tf.cli.embed", "sal_tf.cli.search"])
def test_help_lists_the_embedding_flags_defined_in_cli_engine(command):
    out = run_cmd([sys.executable, "-m", command, "--help"])  # absl's --help exits 1
    assert "Traceback" not in out.stderr, out.stderr
    for flag in ("--batch_size", "--[no]flip", "--[no]progress", "--engine", "--ray_address", "--ray_workers"):
        assert f"  {flag}:" in out.stdout, (flag, out.stdout)

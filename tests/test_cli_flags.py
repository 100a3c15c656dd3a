"""Every trainer's and command's flags against the configs and library tuples they set (one source).

The trainers' flags (`sal_tf.cli.train_flags`) are defined into fresh `flags.FlagValues()` and
parsed here; the commands' `define_flags()` write absl's global `FLAGS`, so one subprocess imports
every `sal_tf.cli` module and defines each command's flags in turn. A config default changed without
its flag (or a library tuple without the command's choices) fails these tests.
"""

import dataclasses
import inspect
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from sal_tf.cli import train_flags
from sal_tf.data import DATASETS, LAYOUTS, LOADERS, dataset_name
from sal_tf.experiments.table1 import ABLATION_DEMO_EPOCHS
from sal_tf.models.architecture import DEPTHS
from sal_tf.models.presets import PRESETS
from sal_tf.training.config import (
    LOSSES,
    STAGES,
    STRATEGIES,
    WEIGHT_DECAY_MODES,
    CifarTrainConfig,
    TrainConfig,
    run_folder,
)
from tests.conftest import REPO

# The field each trainer flag sets when it is not named like it ("stage1.epochs": a stage's field).
FIELD_OF = {
    "stage1_epochs": "stage1.epochs",
    "stage2_epochs": "stage2.epochs",
    "stage1_lr": "stage1.learning_rate",
    "stage2_lr": "stage2.learning_rate",
    "num_ids": "stage2.num_ids",
    "num_instances": "stage2.num_instances",
    "epochs": "stage1.epochs",
    "lr": "stage1.learning_rate",
    "batch_size": "stage1.batch_size",
    "weight_decay": "stage1.weight_decay",
    "weight_decay_mode": "stage1.weight_decay_mode",
    "momentum": "stage1.momentum",
    "lr_decay_epochs": "stage1.decay_every_epochs",
    "warmup_epochs": "stage1.warmup_epochs",
    "warmup_start": "stage1.warmup_start",
    "optimizer": "stage1.optimizer",
    "lr_milestones": "stage1.decay_milestones",
}
# Flags that set no config field of their own name (paths, the data choice, the Table 1 rows).
NOT_FIELDS = {"data_dir", "model_dir", "demo_cache_dir", "dataset", "settings", "seeds", "data_root", "market_dir",
              "duke_dir", "datasets"}  # fmt: skip
# Library tuple → the enum flags that offer it.
ENUMS = {
    "loss": LOSSES,
    "strategy": STRATEGIES,
    "stage": STAGES,
    "depth": DEPTHS,
    "preset": tuple(PRESETS),
    "weight_decay_mode": WEIGHT_DECAY_MODES,
    "dataset": LAYOUTS,
}


def defined(define, *args, **kwargs):
    """A fresh `FlagValues` with `define`'s flags."""
    flag_values = flags.FlagValues()
    define(*args, flag_values=flag_values, **kwargs)
    return flag_values


def parsed(define, argv, *args, **kwargs):
    flag_values = defined(define, *args, **kwargs)
    flag_values(["trainer", *argv])
    return flag_values


def value_of(config, field):
    for part in field.split("."):
        config = getattr(config, part)
    return config


TRAINERS = {
    "market": (
        train_flags.define_reid_flags,
        ("market1501",),
        (("paper", TrainConfig()), ("demo", TrainConfig.demo())),
    ),
    "ablation": (train_flags.define_ablation_flags, (), (("paper", TrainConfig()), ("demo", TrainConfig.demo()))),
    "cifar100": (train_flags.define_cifar_flags, (), (("cifar", CifarTrainConfig()),)),
    "paper": (train_flags.define_paper_flags, (), (("paper", TrainConfig()), ("demo", TrainConfig.demo()))),
}


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_every_trainer_flag_default_and_choice_is_the_config_value(trainer):
    define, args, configs = TRAINERS[trainer]
    flag_values = defined(define, *args)
    assert len(flag_values) >= 30
    for name in flag_values:
        flag = flag_values[name]
        if name in ENUMS:
            assert flag.parser.enum_values == [str(v) for v in ENUMS[name]], name
        if name in NOT_FIELDS:
            continue
        field = FIELD_OF.get(name, name)
        values = {label: value_of(config, field) for label, config in configs}
        if flag.default is None:  # the config's value applies; --help says which
            if name in ("multi_level", "stage6"):  # CIFAR: "same as --dilation"
                assert "--dilation" in flag.help, name
                continue
            for label, value in values.items():
                assert str(value) in flag.help, (name, label, value, flag.help)
        else:  # one value, the same in every config the flag serves
            for label, value in values.items():
                assert flag.default == value or flag.default == str(value), (name, label, flag.default, value)


def test_reid_flags_without_data_give_the_demo_config_and_with_data_the_papers(tmp_path):
    demo = train_flags.reid_config_from_flags(parsed(train_flags.define_reid_flags, [], "market1501"))
    assert demo == TrainConfig.demo()
    data = str(tmp_path)
    paper = train_flags.reid_config_from_flags(
        parsed(train_flags.define_reid_flags, [f"--data_dir={data}"], "market1501")
    )
    assert paper == dataclasses.replace(TrainConfig(), data_dir=data)
    duke = train_flags.reid_config_from_flags(
        parsed(train_flags.define_reid_flags, [f"--data_dir={data}", "--dataset=duke"], "market1501")
    )
    assert duke == dataclasses.replace(
        TrainConfig(), data_dir=data, dataset="dukemtmc", model_dir=run_folder("dukemtmc")
    )


def test_cifar_flags_give_the_cifar_config_and_follow_dilation():
    assert train_flags.cifar_config_from_flags(parsed(train_flags.define_cifar_flags, [])) == CifarTrainConfig()
    plain = train_flags.cifar_config_from_flags(parsed(train_flags.define_cifar_flags, ["--nodilation", "--depth=101"]))
    assert (plain.dilation, plain.multi_level, plain.stage6, plain.depth) == (False, False, False, 101)


def test_ablation_flags_halve_the_demo_and_keep_the_paper(tmp_path):
    demo = train_flags.ablation_config_from_flags(parsed(train_flags.define_ablation_flags, []))
    assert (demo.stage1.epochs, demo.stage2.epochs) == (ABLATION_DEMO_EPOCHS["stage1"], ABLATION_DEMO_EPOCHS["stage2"])
    assert demo.model_dir == run_folder("ablation_demo") and demo.eval_untrained is False
    paper = train_flags.ablation_config_from_flags(
        parsed(train_flags.define_ablation_flags, [f"--data_dir={tmp_path}"])
    )
    assert paper == dataclasses.replace(
        TrainConfig(), data_dir=str(tmp_path), model_dir=run_folder("ablation_market1501")
    )


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--stage1_epochs=3"], "stage1.epochs", 3),
        (["--num_ids=5", "--num_instances=2"], "stage2.batch_size", 10),
        (["--depth=101"], "depth", 101),
        (["--lr_decay_epochs=7"], "stage2.decay_every_epochs", 7),
        (["--weight_decay_mode=decoupled"], "stage2.weight_decay_mode", "decoupled"),
        (["--noeval_untrained"], "eval_untrained", False),
        (["--checkpoint_every_steps=9"], "checkpoint_every_steps", 9),
    ],
)
def test_a_given_flag_sets_its_field_on_the_demo_and_the_paper_config(tmp_path, argv, field, value):
    for data in ([], [f"--data_dir={tmp_path}"]):
        config = train_flags.reid_config_from_flags(parsed(train_flags.define_reid_flags, [*argv, *data], "market1501"))
        assert value_of(config, field) == value, (argv, data)


def test_a_field_flag_follows_the_config_it_is_given():
    """The drift check in small: a changed config default is the flag's default, with the field's type."""
    changed = dataclasses.replace(TrainConfig(), margin1=0.7, depth=101, rerank=False)
    flag_values = flags.FlagValues()
    for name in ("margin1", "depth", "rerank"):
        train_flags.define_field_flag(name, changed, "help", flag_values=flag_values)
    assert flag_values["margin1"].default == 0.7 and flag_values["rerank"].default is False
    assert flag_values["depth"].default == "101" and flag_values["depth"].parser.enum_values == ["14", "50", "101"]


def test_every_dataset_name_resolves_to_a_loader():
    assert set(LOADERS) <= set(LAYOUTS) and "demo" in DATASETS
    for name in LAYOUTS:
        assert dataset_name(name) in LOADERS, name


# One process: import every sal_tf.cli module, define each command's flags (absl's global FLAGS), record
# them, delete them (the commands share names such as --model), and define the trainers' flags.
DEFINE_EVERY_COMMAND = """
import importlib, json, pkgutil, sys
from absl import flags
import sal_tf.cli
names = sorted(m.name for m in pkgutil.iter_modules(sal_tf.cli.__path__, "sal_tf.cli."))
modules, failed = {}, {}
for name in names:
    try:
        modules[name] = importlib.import_module(name)
    except ImportError as e:  # an optional extra (serve, track) that is not installed
        failed[name] = str(e)
described = {}
for name, module in modules.items():
    if not hasattr(module, "define_flags"):
        continue
    before = set(flags.FLAGS)
    module.define_flags()
    new = sorted(set(flags.FLAGS) - before)
    described[name] = {f: [flags.FLAGS[f].default, getattr(flags.FLAGS[f].parser, "enum_values", None)] for f in new}
    for f in new:
        delattr(flags.FLAGS, f)
from sal_tf.cli import train_flags
for define, args in ((train_flags.define_reid_flags, ("dukemtmc",)), (train_flags.define_cifar_flags, ()),
                     (train_flags.define_ablation_flags, ())):
    define(*args, flag_values=flags.FlagValues())
print(json.dumps({"modules": names, "failed": failed, "flags": described, "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.fixture(scope="module")
def commands():
    out = subprocess.run(
        [sys.executable, "-c", DEFINE_EVERY_COMMAND],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_cli_module_imports_into_one_process_and_defines_its_flags(commands):
    core = {"train", "evaluate", "embed", "search", "attention", "export"}
    assert {f"sal_tf.cli.{name}" for name in core} <= set(commands["modules"])
    assert not {f"sal_tf.cli.{name}" for name in core} & set(commands["failed"]), commands["failed"]
    flag_libraries = {m for m in commands["modules"] if m.endswith("_flags")}  # train_flags, runtime_flags
    defining = set(commands["modules"]) - set(commands["failed"]) - {"sal_tf.cli.train"} - flag_libraries
    assert defining == set(commands["flags"]), "every command but train (train_flags) has define_flags()"
    assert "sal_tf.cli.runtime_flags" in flag_libraries and {"threads", "precision"} <= set(
        commands["flags"]["sal_tf.cli.serve"]
    )
    assert all(commands["flags"].values())
    assert not commands["tensorflow"], "importing the commands and defining their flags imports no TensorFlow"


def library_default(module, function, parameter):
    import importlib

    target = importlib.import_module(module)
    for part in function.split("."):
        target = getattr(target, part)
    return inspect.signature(target).parameters[parameter].default


# (command, flag) → the library parameter whose default it is.
COMMAND_DEFAULTS = {
    ("evaluate", "rerank"): ("sal_tf.inference.evaluate", "evaluate_dataset", "rerank"),
    ("evaluate", "flip"): ("sal_tf.inference.evaluate", "evaluate_dataset", "flip"),
    ("evaluate", "batch_size"): ("sal_tf.inference.evaluate", "evaluate_dataset", "batch_size"),
    ("embed", "batch_size"): ("sal_tf.inference.embedding_files", "embed_images", "batch_size"),
    ("embed", "flip"): ("sal_tf.inference.embedding_files", "embed_images", "flip"),
    ("embed", "progress"): ("sal_tf.inference.embedding_files", "embed_images", "progress"),
    ("attention", "alpha"): ("sal_tf.inference.pictures", "attention_picture", "alpha"),
    ("export", "num_samples"): ("sal_tf.export.export_lib", "export", "num_samples"),
    ("export", "tflite"): ("sal_tf.export.export_lib", "export", "tflite_files"),
    ("export", "onnx"): ("sal_tf.export.export_lib", "export", "onnx_file"),
    ("search", "k"): ("sal_tf.gallery.faiss_index", "GalleryIndex.search", "k"),
    ("search", "batch_size"): ("sal_tf.inference.embedding_files", "embed_images", "batch_size"),
    ("track", "batch_frames"): ("sal_tf.tracking.run", "run_sequence", "batch_frames"),
    ("track", "min_visibility"): ("sal_tf.tracking.run", "run_sequence", "min_visibility"),
}


@pytest.mark.parametrize(("command", "flag"), sorted(COMMAND_DEFAULTS))
def test_command_defaults_are_the_library_defaults(commands, command, flag):
    default, _ = commands["flags"][f"sal_tf.cli.{command}"][flag]
    assert default == library_default(*COMMAND_DEFAULTS[command, flag]), (command, flag)


def test_command_choices_are_the_library_tuples(commands):
    from sal_tf.evaluation.distance import DISTANCES
    from sal_tf.gallery import ann_index, faiss_index

    evaluate = commands["flags"]["sal_tf.cli.evaluate"]
    assert evaluate["dataset"][1] == list(LAYOUTS) and evaluate["dataset"][0] == TrainConfig.dataset
    assert evaluate["rerank"][0] == TrainConfig.rerank
    searching = commands["flags"]["sal_tf.cli.search"]
    assert searching["index"][1] == list(dict.fromkeys([*faiss_index.INDEX_KINDS, *ann_index.KINDS]))
    assert searching["distance"][1] == list(DISTANCES)
    assert searching["max_rerank"][0] == faiss_index.MAX_RERANK_ITEMS

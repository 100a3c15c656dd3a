"""The package's layering, read from the imports of every module (no module is imported).

* models, losses, data, evaluation import nothing else of `sal_tf` (but `sal_tf.utils`, the base);
* losses take tensors, never models (they do not import `sal_tf.models` — covered above);
* training imports those layers and never the entry points (`trainers`, `export`, `sal_tf.cli`);
* inference (using a trained model) imports models / data / evaluation, never training;
* export imports models (and evaluation / utils / inference helpers), never training;
* nobody imports the entry points, and no module imports another module's private (`_x`) names.
"""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("sal_tf", "trainers", "export", "benchmarks")
BASE = {"sal_tf.utils"}
ALLOWED = {  # layer → sal_tf layers (and top-level packages) it may import
    "sal_tf.utils": set(),
    "sal_tf.models": BASE,
    "sal_tf.losses": BASE,
    "sal_tf.data": BASE,
    "sal_tf.evaluation": BASE,
    "sal_tf.training": BASE | {"sal_tf.models", "sal_tf.losses", "sal_tf.data", "sal_tf.evaluation"},
    "sal_tf.inference": BASE | {"sal_tf.models", "sal_tf.data", "sal_tf.evaluation"},
    "sal_tf.cli": BASE | {"sal_tf.models", "sal_tf.data", "sal_tf.evaluation", "sal_tf.inference"},
    "sal_tf": BASE | {"sal_tf.inference"},  # sal_tf/__init__.py: the lazy load_model
    "export": BASE | {"sal_tf.models", "sal_tf.evaluation", "sal_tf.inference", "export"},
    "trainers": BASE | {"sal_tf.training"},
}
ENTRY_POINTS = ("trainers", "sal_tf.cli")


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module):
    if module.startswith("sal_tf."):
        return ".".join(module.split(".")[:2])
    return module.split(".")[0]


def imports_of(path):
    """(imported module, imported names) of every import statement, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]


def project_modules():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield module_name(path), path


def test_every_layer_imports_only_what_it_may():
    problems = []
    for module, path in project_modules():
        layer = layer_of(module)
        if layer == "benchmarks":
            continue
        for target, _ in imports_of(path):
            target_layer = layer_of(target)
            if target_layer not in ALLOWED or target_layer == layer:
                continue
            if target_layer not in ALLOWED[layer]:
                problems.append(f"{module} imports {target} ({layer} may import {sorted(ALLOWED[layer])})")
    assert not problems, "\n".join(problems)


def test_nothing_imports_an_entry_point():
    problems = []
    for module, path in project_modules():
        for target, _ in imports_of(path):
            for entry in ENTRY_POINTS:
                inside = module == entry or module.startswith(entry + ".")
                if (target == entry or target.startswith(entry + ".")) and not inside:
                    problems.append(f"{module} imports the entry point {target}")
    assert not problems, "\n".join(problems)


def test_no_module_imports_private_names():
    problems = []
    for module, path in project_modules():
        for target, names in imports_of(path):
            if layer_of(target) not in ALLOWED and target.split(".")[0] not in PACKAGES:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in target.split(".") if p.startswith("_") and not p.startswith("__")]
            if private:
                problems.append(f"{module} imports private {private} from {target}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("bad", ["from sal_tf.training import loop", "from sal_tf.evaluation.rank import _helper"])
def test_the_checks_catch_a_violation(tmp_path, bad):
    path = tmp_path / "m.py"
    path.write_text(bad + "\n")
    ((target, names),) = list(imports_of(path))
    is_layer_violation = layer_of(target) not in ALLOWED["sal_tf.models"]
    is_private = any(n.startswith("_") for n in names)
    assert is_layer_violation or is_private

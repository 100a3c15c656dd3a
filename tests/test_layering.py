"""The package's layering, read from the imports of every module (no module is imported).

* models, losses, data, evaluation import nothing else of `sal_tf` (but `sal_tf.utils`, the base);
* losses take tensors, never models (they do not import `sal_tf.models` — covered above);
* training (the generic trainer) imports those layers and never the entry points (`trainers`, `export`,
  `sal_tf.cli`); the paper's experiments (`sal_tf.experiments`) build on training, nobody below imports them;
* inference (using a trained model) imports models / data / evaluation, never training;
* export imports models (and evaluation / utils / inference helpers), never training;
* the gallery store, the search service and the tracker build on inference, never on training;
* nobody imports the entry points, and no module imports another module's private (`_x`) names;
* no import cycle among the `sal_tf` modules (whatever the layers allow);
* importing a library module changes nothing global: no absl flags, no environment variables, no
  library settings (read from the source, and checked by importing every module in one process), and
  importing a package changes no logger's level (checked in a fresh process).
"""

import ast
import json
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import REPO

PACKAGES = ("sal_tf", "trainers", "export", "benchmarks")
BASE = {"sal_tf.utils"}
ALLOWED = {  # layer → sal_tf layers (and top-level packages) it may import
    "sal_tf.utils": set(),
    "sal_tf.models": BASE,
    "sal_tf.losses": BASE,
    "sal_tf.data": BASE,
    "sal_tf.evaluation": BASE,
    "sal_tf.training": BASE | {"sal_tf.models", "sal_tf.losses", "sal_tf.data", "sal_tf.evaluation"},
    "sal_tf.experiments": BASE
    | {"sal_tf.models", "sal_tf.losses", "sal_tf.data", "sal_tf.evaluation", "sal_tf.training"},
    "sal_tf.inference": BASE | {"sal_tf.models", "sal_tf.data", "sal_tf.evaluation"},
    "sal_tf.export": BASE | {"sal_tf.models", "sal_tf.data", "sal_tf.evaluation", "sal_tf.inference"},
    "sal_tf.gallery": BASE | {"sal_tf.data", "sal_tf.evaluation", "sal_tf.inference"},
    "sal_tf.serve": BASE
    | {
        "sal_tf.models",
        "sal_tf.data",
        "sal_tf.evaluation",
        "sal_tf.inference",
        "sal_tf.gallery",
        "sal_tf.export",
    },  # fmt: skip
    "sal_tf.tracking": BASE
    | {"sal_tf.models", "sal_tf.data", "sal_tf.evaluation", "sal_tf.inference", "sal_tf.export"},
    "sal_tf.mtmc": BASE  # multi-camera tracking: builds on the tracker (and adds tracklets to a gallery store)
    | {"sal_tf.data", "sal_tf.evaluation", "sal_tf.inference", "sal_tf.tracking", "sal_tf.gallery"},
    "sal_tf.cli": BASE
    | {
        "sal_tf.models",
        "sal_tf.data",
        "sal_tf.evaluation",
        "sal_tf.inference",
        "sal_tf.training",
        "sal_tf.experiments",
        "sal_tf.export",
        "sal_tf.gallery",
        "sal_tf.serve",
        "sal_tf.tracking",
        "sal_tf.mtmc",
    },  # fmt: skip
    "sal_tf": BASE | {"sal_tf.inference"},  # sal_tf/__init__.py: the lazy load_embedder
    "export": {"sal_tf.cli", "sal_tf.export"},  # thin `python -m export[.verify|.client]` shims
    "trainers": {"sal_tf.cli"},  # thin `python -m trainers.<name>` shims
}
ENTRY_POINTS = ("trainers", "export", "sal_tf.cli")
LIBRARY = "sal_tf"  # every module of the installed package but the entry points (sal_tf.cli)


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
        for path in sorted(pathlib.Path(REPO, package).rglob("*.py")):
            yield module_name(path), path


def project_imports():
    """(module, imported module, imported names) of every import statement of every project module."""
    for module, path in project_modules():
        for target, names in imports_of(path):
            yield module, target, names


def test_every_layer_imports_only_what_it_may():
    problems = []
    for module, target, _ in project_imports():
        layer, target_layer = layer_of(module), layer_of(target)
        if layer not in ALLOWED and layer != "benchmarks":
            problems.append(f"{module}: the layer {layer} is not in ALLOWED (add it with the layers it may import)")
        if layer not in ALLOWED or target_layer not in ALLOWED or target_layer == layer:
            continue
        if target_layer not in ALLOWED[layer]:
            problems.append(f"{module} imports {target} ({layer} may import {sorted(ALLOWED[layer])})")
    assert not problems, "\n".join(sorted(set(problems)))


def is_inside(module, package):
    return module == package or module.startswith(package + ".")


def test_nothing_imports_an_entry_point():
    problems = []
    for module, target, _ in project_imports():
        shim = layer_of(module) in ("trainers", "export")  # the shims call their command, nothing else
        for entry in ENTRY_POINTS:
            if is_inside(target, entry) and not is_inside(module, entry) and not shim:
                problems.append(f"{module} imports the entry point {target}")
    assert not problems, "\n".join(problems)


def test_no_module_imports_private_names():
    problems = []
    for module, target, names in project_imports():
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


def import_graph():
    """{sal_tf module: the sal_tf modules its import statements name}, function-level imports included.

    `from package import name` points at the submodule `package.name` when there is one, else at the
    package; a package's parents (imported first by Python) are not edges: every module would close a
    circle with its package's `__init__`.
    """
    modules = {module: path for module, path in project_modules() if layer_of(module).startswith("sal_tf")}
    graph = {}
    for module, path in modules.items():
        targets = set()
        for target, names in imports_of(path):
            found = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            targets |= set(found) if found and len(found) == len(names) else {target, *found}
        graph[module] = sorted(t for t in targets if t in modules and t != module)
    return graph


def import_cycles(graph):
    """The import circles of `graph` ({module: [imported modules]}): its strongly connected components
    with more than one module (Tarjan's algorithm), each sorted."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle_among_sal_tf_modules():
    graph = import_graph()
    assert graph["sal_tf.experiments.paper_run"] and "sal_tf.training.commands" in graph["sal_tf.experiments.ablation"]
    assert import_cycles(graph) == [], "import circles (function-level imports included)"


def test_the_cycle_check_finds_a_circle_through_a_function_level_import(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from sal_tf.experiments.paper_run import run_paper\n")
    assert list(imports_of(path)) == [("sal_tf.experiments.paper_run", ["run_paper"])]
    graph = {"commands": ["distribute", "paper_run"], "paper_run": ["seeds", "commands"], "seeds": [], "x": ["a"],
             "a": ["b"], "b": ["x", "seeds"], "distribute": []}  # fmt: skip
    assert import_cycles(graph) == [["a", "b", "x"], ["commands", "paper_run"]]


# Module-level calls that change process-wide state when a module is imported.
GLOBAL_CALLS = ("flags.DEFINE", "os.environ.setdefault", "os.environ.update", "os.putenv", "set_global_policy",
                "logging.set_verbosity", "tf.config.", "faiss.omp_set_num_threads", "keras.config.set")  # fmt: skip


def _module_level_side_effects(path):
    """Top-level statements (outside functions and classes) that define flags or set global state."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and any(c in ast.unparse(sub.func) for c in GLOBAL_CALLS):
                found.append(f"line {sub.lineno}: {ast.unparse(sub)[:80]}")
            targets = sub.targets if isinstance(sub, ast.Assign) else []
            for t in targets:
                text = ast.unparse(t)
                if text.startswith(("os.environ[", "faiss.cvar.")):
                    found.append(f"line {sub.lineno}: {text} = ...")
    return found


def test_library_modules_define_no_flags_and_set_nothing_global_at_import():
    problems = []
    for module, path in project_modules():
        if layer_of(module) in ("sal_tf", "sal_tf.utils", "sal_tf.cli") or layer_of(module).startswith("sal_tf."):
            problems += [f"{module} {p}" for p in _module_level_side_effects(path)]
    assert not problems, "\n".join(problems)


def test_the_side_effect_check_catches_a_flag_and_an_environment_write(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "import os\nfrom absl import flags\nflags.DEFINE_string('x', None, 'x')\n"
        "os.environ['KERAS_BACKEND'] = 'jax'\ndef f():\n    flags.DEFINE_string('y', None, 'y')\n"
    )
    found = _module_level_side_effects(path)
    assert len(found) == 2 and "DEFINE_string('x'" in found[0] and "KERAS_BACKEND" in found[1]


IMPORT_ALL = """
import importlib, json, os, pkgutil, sys
from absl import flags
import sal_tf
for third_party in sys.argv[1:]:  # their own import-time settings (TF, OpenCV, h5py) are not ours
    try:
        importlib.import_module(third_party)
    except ImportError:
        pass
env = dict(os.environ)
names = sorted(m.name for m in pkgutil.walk_packages(sal_tf.__path__, "sal_tf.") if not m.name.endswith("__main__"))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as e:  # an optional extra that is not installed
        failed[name] = str(e)
changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
ours = {m: [f.name for f in fs] for m, fs in flags.FLAGS.flags_by_module_dict().items() if m.startswith("sal_tf")}
print(json.dumps({"modules": names, "failed": failed, "env": changed, "flags": ours}))
"""


@pytest.mark.slow
def test_importing_every_module_in_one_process_changes_no_flag_and_no_environment_variable():
    third_party = sorted(
        {t.split(".")[0] for m, p in project_modules() if m.startswith("sal_tf") for t, _ in imports_of(p)}
        - {"sal_tf", *sys.builtin_module_names}
    )
    cmd = [sys.executable, "-c", IMPORT_ALL, *third_party]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "sal_tf.cli.train" in report["modules"] and "sal_tf.cli.search" in report["modules"]
    assert not report["failed"], report["failed"]
    assert report["flags"] == {}, f"absl flags defined at import: {report['flags']}"
    assert report["env"] == [], f"environment changed at import: {report['env']}"


# Each package imported in turn into one fresh process; the loggers whose level an import changed
# (a logger the import created counts when it was given a level).
IMPORT_PACKAGES = """
import importlib, json, logging, sys

def levels():
    loggers = logging.Logger.manager.loggerDict.items()
    return {"<root>": logging.getLogger().level, **{n: g.level for n, g in loggers if isinstance(g, logging.Logger)}}

changed, failed = {}, {}
for name in sys.argv[1:]:
    before = levels()
    try:
        importlib.import_module(name)
    except ImportError as e:  # an optional extra that is not installed
        failed[name] = str(e)
    after = levels()
    diff = {n: [logging.getLevelName(before.get(n, 0)), logging.getLevelName(level)]
            for n, level in after.items() if level != before.get(n, logging.NOTSET)}
    if diff:
        changed[name] = diff
print(json.dumps({"changed": changed, "failed": failed}))
"""


def test_importing_a_sal_tf_package_changes_no_logger_level():
    packages = sorted(
        module for module, path in project_modules() if module.startswith("sal_tf") and path.name == "__init__.py"
    )
    assert {"sal_tf", "sal_tf.experiments", "sal_tf.gallery", "sal_tf.training"} <= set(packages)
    out = subprocess.run([sys.executable, "-c", IMPORT_PACKAGES, *packages], cwd=REPO, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert not report["failed"], report["failed"]
    assert report["changed"] == {}, f"logger levels changed by importing a package: {report['changed']}"

"""The core needs no torch: `--help`, `best`, the dashboard's module and a preset's settings import
none of it, so they answer at once (torch takes seconds to import) and a box without it can read a study."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

# Runs `python -m search ARGS` (or the code in ARGS[1] after "-c") and says on the last line of
# stderr whether torch was imported.
PROBE = """
import runpy, sys
if sys.argv[1] == "-c":
    exec(sys.argv[2])
else:
    sys.argv = ["search", *sys.argv[1:]]
    try:
        runpy.run_module("search", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        assert not stop.code, stop.code
print("torch imported" if "torch" in sys.modules else "no torch", file=sys.stderr)
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["retrain", "--help"]])
def test_help_imports_no_torch(args):
    done = _run(*args)
    assert "usage: python -m search" in done.stdout
    assert done.stderr.splitlines()[-1] == "no torch"


def test_best_imports_no_torch(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for name, directions in (("one", ["maximize"]), ("front", ["maximize", "minimize"])):
        study = optuna.create_study(study_name=name, storage=storage, directions=directions)
        study.set_user_attr("metric", "accuracy")
        study.set_user_attr("objectives", "accuracy,params")
        study.add_trial(create_trial(values=[0.75, 1000.0][: len(directions)], params={"lr": 0.01},
                                     distributions={"lr": FloatDistribution(1e-4, 1.0, log=True)}))
    one = _run("best", "--storage", storage, "--study", "one")
    assert "best: trial 0, accuracy 0.7500" in one.stdout and '"lr": 0.01' in one.stdout
    front = _run("best", "--storage", storage, "--study", "front")
    assert "trial    0: accuracy 0.7500, 1,000 params" in front.stdout
    assert one.stderr.splitlines()[-1] == front.stderr.splitlines()[-1] == "no torch"


def test_settings_and_the_dashboard_module_import_no_torch():
    code = ("from search.config import load_preset\n"
            "import search.shown.dashboard\n"
            "import spaces, spaces.common  # the space registry and the training settings\n"
            "for name in ('cnn', 'mlp', 'resnet', 'timm', 'mlp-grid'):\n"
            "    assert load_preset(name, 'cpu').checked().space\n")
    assert _run("-c", code).stderr.splitlines()[-1] == "no torch"


def _imported_packages(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` -> the top-level packages it imports anywhere (in functions too)."""
    found = {}
    for path in sorted((Path(__file__).parents[1] / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
        found[path.relative_to(path.parents[1]).as_posix()] = names
    return found


def test_the_engine_is_imported_never_importing():
    """search imports spaces, gic_models and gic_common; none of those imports search, and gic_common
    (what the others share) imports none of them, nor torch."""
    for package, forbidden in (("spaces", {"search"}), ("gic_models", {"search"}),
                               ("gic_common", {"search", "spaces", "gic_models", "torch", "torchvision"})):
        modules = _imported_packages(package)
        assert modules, package
        wrong = {module: sorted(names & forbidden) for module, names in modules.items() if names & forbidden}
        assert not wrong, wrong

"""`import petl` and the `petl` command's helps do not import torch (PEP 562 lazy names in
petl/__init__.py), while every public name still resolves as `petl.X` and `from petl import X`.

Not timed: whether torch is in `sys.modules` decides it (the wall time is in the hand-off
note and benchmarks/help_time.py)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

import petl
from petl.names import METHOD_NAMES, STRATEGY_NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs the CLI's main for each argv with SystemExit caught, then says which heavy libraries
# were imported after each one (cumulative: the first True names the culprit).
HELPS = """
import json, sys
from petl.cli import main
seen = {}
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit:
        pass
    seen[" ".join(argv)] = {m: m in sys.modules for m in ("torch", "transformers", "accelerate")}
print(json.dumps(seen), file=sys.stderr)
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_import_petl_does_not_import_torch() -> None:
    out = run_python(
        "import sys, petl; e = petl.ConfigError; "
        "print(sorted(m for m in ('torch', 'transformers', 'accelerate', 'peft') "
        "if m in sys.modules))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_helps_do_not_import_torch() -> None:
    argvs = [["--help"], ["train", "--help"], ["bench", "--help"], ["report", "--help"]]
    out = run_python(HELPS, json.dumps(argvs))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("usage: petl") == 4  # each help was printed
    seen = json.loads(out.stderr.strip().splitlines()[-1])
    assert list(seen) == [" ".join(a) for a in argvs]
    for argv, loaded in seen.items():
        assert not any(loaded.values()), f"petl {argv} imported {loaded}"


def test_every_public_name_resolves() -> None:
    for name in petl.__all__:
        assert getattr(petl, name) is not None, name
        namespace: dict[str, object] = {}
        exec(f"from petl import {name}", namespace)
        assert namespace[name] is getattr(petl, name)
    assert set(petl.__all__) <= set(dir(petl))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = petl.no_such_name  # type: ignore[attr-defined]


def test_functions_named_like_modules_stay_functions() -> None:
    # Importing a submodule rebinds the package attribute of its name; the modules behind
    # petl.summary / petl.export are named otherwise so these stay the functions.
    import petl.exporting
    import petl.param_summary

    assert petl.summary is petl.param_summary.summary
    assert petl.export is petl.exporting.export


def test_submodules_reachable_from_a_bare_import() -> None:
    out = run_python("import petl; print(petl.metrics.__name__)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "petl.metrics"


def test_type_checking_imports_match_the_lazy_table() -> None:
    """The TYPE_CHECKING block (for mypy and the API docs) names the same homes as _LAZY."""
    with open(os.path.join(ROOT, "petl", "__init__.py")) as f:
        tree = ast.parse(f.read())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    imported = {
        (node.module, alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = {(module, name) for module, names in petl._LAZY.items() for name in names}
    assert imported == lazy
    eager = {"CheckpointError", "ConfigError", "DataError"}
    eager |= {"IncompatibleModelError", "PetlError", "TrainingError"}
    assert set(petl.__all__) == {name for _, name in lazy} | eager


def test_light_name_lists_equal_the_registries() -> None:
    # order is the help's; membership is what must agree (add a new name to petl/names.py)
    assert sorted(METHOD_NAMES) == sorted(petl.METHODS)
    assert sorted(STRATEGY_NAMES) == sorted(petl.STRATEGIES)
    assert len(set(METHOD_NAMES)) == len(METHOD_NAMES)
    assert len(set(STRATEGY_NAMES)) == len(STRATEGY_NAMES)

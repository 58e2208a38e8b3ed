"""Fixtures of the fault-injection tests: the tiny CL models (tests/cl/cl_data.py), the tiny
bench model and data folders (tests/bench/conftest.py), and ways to break the disk."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.bench.conftest import tiny_data_dir, tiny_model_dir, write_config  # noqa: F401
from tests.cl.cl_data import make_tokenizer

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tok() -> Any:
    return make_tokenizer()

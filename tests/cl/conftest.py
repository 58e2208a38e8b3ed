"""Fixtures of the continual-learning tests (helpers live in cl_data.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.cl.cl_data import make_tokenizer, split_records

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tok() -> Any:
    return make_tokenizer()


@pytest.fixture
def records() -> dict[str, dict[str, Any]]:
    """Two tasks of two classes each (class-incremental by default)."""
    return split_records([[0, 1], [2, 3]], n_train=24, n_test=12)

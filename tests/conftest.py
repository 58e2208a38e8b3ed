"""Shared fixtures: one torch thread (2-core CI boxes), tiny models and a tokenizer."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # tests import tiny_models directly

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    """A word-level fast tokenizer built in code (see tiny_models.make_tokenizer)."""
    from tiny_models import make_tokenizer

    return make_tokenizer()


@pytest.fixture
def make_model():
    """The factory `make_model(name, seed=0, hidden=32)` of tiny_models."""
    from tiny_models import make_model

    return make_model

"""Shared fixtures: one torch thread (2-core CI boxes), per-test seeding, tiny models and a
tokenizer.

Every test starts from torch, numpy and `random` seeded with a number derived from its own
node id (plus `PETL_TEST_SEED`, default 0), so its random inputs are the same in any order,
alone or in the full suite, and a failure can be reproduced. pytest-randomly (a dev
dependency) shuffles the order; its own reseeding is switched off here so that the seed a
test sees does not depend on the run's `--randomly-seed`. See docs/contributing.md."""

from __future__ import annotations

import os
import random
import zlib

import numpy as np
import pytest
import torch

from tests.tiny_models import make_model as _make_model
from tests.tiny_models import make_tokenizer

torch.set_num_threads(int(os.environ.get("PETL_TEST_THREADS", "1")))


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "randomly_reset_seed"):
        config.option.randomly_reset_seed = False  # our per-test seed below instead


def seed_for(nodeid: str) -> int:
    """The seed of one test: stable across orders and machines, varied by PETL_TEST_SEED."""
    return (zlib.crc32(nodeid.encode()) + int(os.environ.get("PETL_TEST_SEED", "0"))) % 2**32


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> None:
    # Module- and session-scoped fixtures (a trained stream shared by several tests) are built
    # lazily, by whichever of their tests runs first in the shuffled order, and before that
    # test's own seed below: seed each from its own name and scope, not from the RNG state the
    # previous test left behind.
    if fixturedef.scope != "function":
        _seed(seed_for(f"{request.node.nodeid}::{fixturedef.argname}"))


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.fixture(autouse=True)
def _seed_everything(request: pytest.FixtureRequest) -> None:
    _seed(seed_for(request.node.nodeid))


@pytest.fixture(scope="session")
def tokenizer():
    """A word-level fast tokenizer built in code (see tiny_models.make_tokenizer)."""
    return make_tokenizer()


@pytest.fixture
def make_model():
    """The factory `make_model(name, seed=0, hidden=32)` of tiny_models."""
    return _make_model

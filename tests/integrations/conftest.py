"""Fixtures of the Trainer integration tests: one torch thread, the helpers of tests/cl and
tests/families importable (tiny models, tokenizers, streams)."""

from __future__ import annotations

import os
import sys

import torch

HERE = os.path.dirname(__file__)
for folder in ("cl", "families"):
    path = os.path.join(HERE, "..", folder)
    if path not in sys.path:
        sys.path.insert(0, path)

torch.set_num_threads(1)

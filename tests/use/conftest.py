"""Fixtures of the tests of using a trained learner: the small streams and tiny models of
tests/cl and tests/families are shared (their helper modules are put on the path)."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(__file__)
for folder in ("cl", "families"):
    path = os.path.join(HERE, "..", folder)
    if path not in sys.path:
        sys.path.insert(0, path)

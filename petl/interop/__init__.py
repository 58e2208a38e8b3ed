"""Bridges to other continual-learning libraries.

- `petl.interop.avalanche.stream_from_benchmark`: an avalanche-lib benchmark as a petl
  `Stream` (needs `pip install petl[avalanche]`; avalanche is imported only when called).
"""

from __future__ import annotations

from petl.interop.avalanche import stream_from_benchmark

__all__ = ["stream_from_benchmark"]

"""Bridges to other continual-learning libraries.

- `petl.interop.avalanche.stream_from_benchmark`: an avalanche-lib benchmark as a petl
  `Stream` (needs `pip install petl[avalanche]`; avalanche is imported only when called).
  The reading itself is `petl.interop.experiences`, which `Stream.from_avalanche` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from petl.interop.avalanche import stream_from_benchmark

__all__ = ["stream_from_benchmark"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: petl.stream imports petl.interop.experiences, and this package
    # must not import petl.stream back while petl.stream is still being imported.
    if name == "stream_from_benchmark":
        from petl.interop.avalanche import stream_from_benchmark

        return stream_from_benchmark
    raise AttributeError(f"module 'petl.interop' has no attribute {name!r}")

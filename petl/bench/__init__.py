"""`petl bench`: configs, the runner over a grid of methods x strategies x seeds, the
offline default stream, and the report writer (JSON, Markdown, PNG plots)."""

from petl.bench.config import BenchConfig, Cell, RunSpec, load, validate
from petl.bench.data import DEFAULT_TASKS, build_stream, offline_stream
from petl.bench.report import write_report
from petl.bench.runner import run

__all__ = [
    "DEFAULT_TASKS",
    "BenchConfig",
    "Cell",
    "RunSpec",
    "build_stream",
    "load",
    "offline_stream",
    "run",
    "validate",
    "write_report",
]

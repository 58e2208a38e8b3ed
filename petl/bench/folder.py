"""The layout of a `petl bench` output folder, written once: its file and folder names,
reading and checking its config.json record, creating or re-opening it, and the records
written beside the cells (environment, invocations).

    .petl-bench                 marker: petl made this folder (only such folders are deleted)
    config.json                 the validated config (echo), the command, the cell keys
    cells/<key>.json            one finished cell: run, seed, Results.to_dict(), environment
    cells/<key>.failed.json     a cell that raised a petl error (retried by --resume)
    checkpoints/<key>/          the engine's checkpoint of an unfinished cell
    invocations.json            wall and CPU time and load average of each `petl bench` call
    results.json, report.md, plots/*.png     written by petl.bench.report
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from typing import Any

from petl.bench.config import BenchConfig, Cell, validate
from petl.errors import ConfigError

CONFIG_FILE = "config.json"
CELLS = "cells"
CHECKPOINTS = "checkpoints"
INVOCATIONS = "invocations.json"
MARKER = ".petl-bench"  # written into every output folder petl creates; --overwrite needs it


def cell_path(out: str, cell: Cell, suffix: str = ".json") -> str:
    return os.path.join(out, CELLS, cell.key + suffix)


def read_record(out: str) -> dict[str, Any]:
    """The config.json record of a benchmark folder, checked to be one petl wrote.

    Raises:
        ConfigError: `out` is not a petl bench output folder (no config.json, or a
            config.json of something else, such as a Hugging Face model).
    """
    path = os.path.join(out, CONFIG_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{out!r} holds no {CONFIG_FILE}: it is not a petl bench output folder.")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"{path} is not valid JSON ({err}); is {out!r} a petl bench folder?"
        ) from None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("config"), dict)
        or not isinstance(record.get("cells"), list)
    ):
        raise ConfigError(
            f"{path} was not written by petl bench (a model's config.json?): {out!r} is not a "
            "petl bench output folder. Point at the folder petl bench reported."
        )
    return record


def is_own_folder(out: str) -> bool:
    """True when `out` carries the marker petl bench writes into the folders it creates."""
    return os.path.isfile(os.path.join(out, MARKER))


def load_saved_config(out: str) -> BenchConfig:
    """The config a benchmark folder was started with."""
    return validate(read_record(out)["config"])


def _comparable(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in raw.items()
        if k not in ("output_dir", "workers", "num_threads", "keep_checkpoints")
    }


def prepare(config: BenchConfig, out: str, resume: bool, overwrite: bool = False) -> bool:
    """Creates (or checks) the output folder; returns True when it continues an earlier run."""
    path = os.path.join(out, CONFIG_FILE)
    used = os.path.isdir(out) and bool(os.listdir(out))
    if used and overwrite:
        if not is_own_folder(out):
            raise ConfigError(
                f"--overwrite deletes only folders petl bench created (they hold {MARKER}); "
                f"{out!r} does not, so it is left alone. Pick another --output, or remove the "
                "folder yourself if you are sure."
            )
        shutil.rmtree(out)
        used = False
    if used and not os.path.exists(path):
        raise ConfigError(
            f"{out!r} already holds other files and is not a petl bench output folder; petl "
            "writes only into new, empty or its own folders. Pick another --output."
        )
    if os.path.exists(path):
        saved = read_record(out)["config"]
        if _comparable(saved) != _comparable(config.raw):
            raise ConfigError(
                f"{out!r} already holds a benchmark of another configuration. Continue it "
                f"with `petl bench --resume {out}`, write elsewhere with --output, or pass "
                "--overwrite to replace it."
            )
        _write_marker(out)  # folders of older petl versions get one once recognised
        return True
    if resume:
        raise ConfigError(f"Nothing to resume in {out!r}: it holds no {CONFIG_FILE}.")
    os.makedirs(os.path.join(out, CELLS), exist_ok=True)
    _write_marker(out)
    record = {
        "config": config.raw,
        "command": " ".join(["petl", *sys.argv[1:]]),
        "cells": [c.key for c in config.cells()],
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, path)
    return False


def _write_marker(out: str) -> None:
    with open(os.path.join(out, MARKER), "w") as f:
        f.write("This folder was created by petl bench; petl bench --overwrite may delete it.\n")


def _write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _children_cpu() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def log_invocation(
    out: str, cells_run: int, elapsed: float, load_start: list[float] | None, cpu_start: float
) -> None:
    """Appends this invocation's wall time, CPU time (this process and its workers) and the
    machine's load average before/after to <out>/invocations.json: on a shared machine the
    load says how much of the wall time was other jobs'."""
    path = os.path.join(out, INVOCATIONS)
    history = []
    if os.path.exists(path):
        with open(path) as f:
            history = json.load(f)
    history.append(
        {
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": " ".join(["petl", *sys.argv[1:]]),
            "cells_run": cells_run,
            "wall_time_s": round(elapsed, 1),
            "cpu_time_s": round(_children_cpu() - cpu_start, 1),
            "cpu_count": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": _loadavg(),
        }
    )
    _write_json(path, history)


def environment(num_threads: int | None = None) -> dict[str, Any]:
    """Machine and library versions, echoed into every cell and the report."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for pkg in ("petl", "torch", "transformers", "peft", "accelerate", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        import torch

        threads: int | None = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        threads = num_threads
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "versions": versions,
    }

"""Atomic checkpoints in safe formats only: tensors in safetensors, everything else in JSON.

A checkpoint is a directory of named parts (`<part>.safetensors` + `<part>.json`). It is
written beside the live one and swapped in with renames, so a run killed at any moment
leaves either the old or the new checkpoint whole, never a mix."""

from __future__ import annotations

import json
import os
import random
import shutil
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from petl.errors import CheckpointError

LIVE, NEW, OLD = "checkpoint", "checkpoint.new", "checkpoint.old"
MANIFEST = "manifest.json"  # written last: its presence marks a complete checkpoint


def split_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Separates tensors (for safetensors) from JSON-able values, keys kept."""
    tensors = {
        k: v.detach().cpu().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)
    }
    rest = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    return tensors, rest


def write(root: str, parts: dict[str, dict[str, Any]]) -> None:
    """Writes all parts as one checkpoint under `root`, atomically replacing the last one."""
    new, live, old = (os.path.join(root, d) for d in (NEW, LIVE, OLD))
    shutil.rmtree(new, ignore_errors=True)
    os.makedirs(new)
    for name, state in parts.items():
        tensors, rest = split_state(state)
        if tensors:
            save_file(tensors, os.path.join(new, f"{name}.safetensors"))
        with open(os.path.join(new, f"{name}.json"), "w") as f:
            json.dump(rest, f)
    with open(os.path.join(new, MANIFEST), "w") as f:
        json.dump({"parts": sorted(parts)}, f)
    if os.path.isdir(live):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(live, old)
    os.replace(new, live)
    shutil.rmtree(old, ignore_errors=True)


def read(root: str) -> dict[str, dict[str, Any]] | None:
    """Reads the last complete checkpoint under `root`, or None if there is none."""
    for name in (LIVE, OLD):
        folder = os.path.join(root, name)
        if os.path.exists(os.path.join(folder, MANIFEST)):
            return _read_folder(folder)
    return None


def _read_folder(folder: str) -> dict[str, dict[str, Any]]:
    parts: dict[str, dict[str, Any]] = {}
    for file in sorted(os.listdir(folder)):
        name, ext = os.path.splitext(file)
        if file == MANIFEST:
            continue
        if ext == ".json":
            with open(os.path.join(folder, file)) as f:
                parts.setdefault(name, {}).update(json.load(f))
        elif ext == ".safetensors":
            parts.setdefault(name, {}).update(load_file(os.path.join(folder, file)))
    return parts


def optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    state = optimizer.state_dict()
    flat: dict[str, Any] = {"param_groups": state["param_groups"]}
    for index, values in state["state"].items():
        for key, value in values.items():
            flat[f"state.{index}.{key}"] = (
                value if isinstance(value, torch.Tensor) else torch.tensor(value)
            )
    return flat


def load_optimizer_state(optimizer: torch.optim.Optimizer, flat: dict[str, Any]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": flat["param_groups"]})


def rng_state() -> dict[str, Any]:
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _jsonable(random.getstate()),
        "numpy": _jsonable(np.random.get_state(legacy=False)),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def load_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tupled(state["python"]))
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def check_fingerprint(saved: dict[str, Any], current: dict[str, Any], root: str) -> None:
    if saved != current:
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise CheckpointError(
            f"The checkpoint in {root!r} belongs to a different configuration (differs in: "
            f"{', '.join(diff)}). Use a new checkpoint_dir, or the same arguments as that run."
        )

"""Atomic checkpoints in safe formats only: tensors in safetensors, everything else in JSON.

A checkpoint is a directory of named parts (`<part>.safetensors` + `<part>.json`). It is
written beside the live one and swapped in with renames, so a run killed at any moment
leaves either the old or the new checkpoint whole, never a mix. Every file is listed with its
size and sha256 in the manifest, checked before anything is loaded; the previous good
checkpoint is kept beside the newest and used when the newest is damaged."""

from __future__ import annotations

import json
import os
import random
import shutil
import warnings
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from petl.errors import CheckpointError
from petl.integrity import sha256_file

LIVE, NEW, OLD = "checkpoint", "checkpoint.new", "checkpoint.old"
# Written last: its presence marks a complete checkpoint, its size + sha256 of every other
# file let a reader tell a whole checkpoint from a truncated or overwritten one.
MANIFEST = "manifest.json"
FORMAT = 2


def split_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Separates tensors (for safetensors) from JSON-able values, keys kept."""
    tensors = {
        k: v.detach().cpu().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)
    }
    rest = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    return tensors, rest


def write(root: str, parts: dict[str, dict[str, Any]]) -> None:
    """Writes all parts as one checkpoint under `root`.

    The new checkpoint is written beside the live one, verified against its manifest, and
    only then swapped in; the live one becomes the previous good checkpoint (`checkpoint.old`)
    and is kept until the next one is complete, so one damaged checkpoint never loses a run.

    Raises:
        CheckpointError: the new checkpoint could not be written (disk full, no permission);
            the previous checkpoint is left as it was.
    """
    new, live, old = (os.path.join(root, d) for d in (NEW, LIVE, OLD))
    shutil.rmtree(new, ignore_errors=True)
    try:
        os.makedirs(new)
        for name, state in parts.items():
            tensors, rest = split_state(state)
            if tensors:
                save_file(tensors, os.path.join(new, f"{name}.safetensors"))
            with open(os.path.join(new, f"{name}.json"), "w") as f:
                json.dump(rest, f)
        files = {
            file: {"size": os.path.getsize(path), "sha256": sha256_file(path)}
            for file in sorted(os.listdir(new))
            for path in [os.path.join(new, file)]
        }
        with open(os.path.join(new, MANIFEST), "w") as f:
            json.dump({"format": FORMAT, "parts": sorted(parts), "files": files}, f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        shutil.rmtree(new, ignore_errors=True)
        raise CheckpointError(
            f"Could not write a checkpoint in {root!r} ({err}); the previous checkpoint is kept. "
            "Free disk space or pick another checkpoint_dir, then run again to resume."
        ) from err
    problem = verify(new)
    if problem is not None:
        shutil.rmtree(new, ignore_errors=True)
        raise CheckpointError(f"The checkpoint just written in {new!r} is damaged: {problem}.")
    if os.path.isdir(live):
        # Sizes only: the new checkpoint is verified in full and becomes the newest, so a
        # bit flip in the live one costs at most the fallback, not a second full hash.
        if verify(live, hashes=False) is None:
            shutil.rmtree(old, ignore_errors=True)
            os.replace(live, old)
        else:  # never let a damaged checkpoint push out the previous good one
            shutil.rmtree(live)
    os.replace(new, live)


def verify(folder: str, hashes: bool = True) -> str | None:
    """What is wrong with the checkpoint in `folder` (naming the file), or None if it is whole.

    Args:
        folder: A checkpoint folder.
        hashes: Also compare every file's sha256 (else only presence and sizes).
    """
    manifest_path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(manifest_path):
        return f"{manifest_path} is missing (the checkpoint was never completed)"
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        files = manifest["files"]
        assert isinstance(files, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return f"{manifest_path} is unreadable or has no file hashes (damaged, or an older petl)"
    for file, expected in files.items():
        path = os.path.join(folder, file)
        if not os.path.isfile(path):
            return f"{path} is missing"
        size = os.path.getsize(path)
        if size != expected.get("size"):
            return f"{path} has {size} bytes, the manifest says {expected.get('size')} (truncated?)"
        if hashes and sha256_file(path) != expected.get("sha256"):
            return f"{path} does not match its sha256 in the manifest (bytes changed)"
    return None


def read(root: str) -> dict[str, dict[str, Any]] | None:
    """Reads the newest whole checkpoint under `root`, or None if none was ever completed.

    A damaged newest checkpoint is reported in a warning and the previous good one is used.

    Raises:
        CheckpointError: checkpoints exist but none is whole; the message names the files.
    """
    damaged: list[str] = []
    for name in (LIVE, NEW, OLD):  # NEW: complete, but the run stopped before the swap
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        problem = verify(folder)
        if problem is None:
            if damaged:
                warnings.warn(
                    f"The newest checkpoint is damaged ({'; '.join(damaged)}); resuming from "
                    f"the previous good checkpoint {folder!r}.",
                    stacklevel=2,
                )
            return _read_folder(folder)
        if name != NEW:  # an unfinished NEW is the debris of a stopped write, not damage
            damaged.append(problem)
    if damaged:
        raise CheckpointError(
            f"No usable checkpoint in {root!r}: {'; '.join(damaged)}. Restore the files, or "
            "delete the folder to train from the start."
        )
    return None


def _read_folder(folder: str) -> dict[str, dict[str, Any]]:
    with open(os.path.join(folder, MANIFEST)) as f:
        listed = json.load(f)["files"]
    parts: dict[str, dict[str, Any]] = {}
    for file in sorted(listed):
        name, ext = os.path.splitext(file)
        path = os.path.join(folder, file)
        if ext == ".json":
            with open(path) as f:
                parts.setdefault(name, {}).update(json.load(f))
        elif ext == ".safetensors":
            parts.setdefault(name, {}).update(load_file(path))
    return parts


def check_parts(parts: dict[str, dict[str, Any]], required: list[str], root: str) -> None:
    """Raises CheckpointError naming the parts a verified checkpoint still lacks."""
    missing = [p for p in required if p not in parts]
    if missing:
        raise CheckpointError(
            f"The checkpoint in {root!r} lacks part(s) {missing}; it was not written by this "
            "version of petl. Delete the folder to train from the start."
        )


def check_names(saved: dict[str, Any], expected: dict[str, Any], root: str) -> None:
    """Raises CheckpointError when saved weights do not cover the model's weights exactly."""
    missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"The checkpoint in {root!r} does not hold this model's weights (missing: "
            f"{missing[:3]}, unexpected: {extra[:3]}). Use a new checkpoint_dir."
        )


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

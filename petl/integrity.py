"""File integrity checks shared by checkpoints, adapters and output folders: content hashes,
a structural check of safetensors files, and a write probe for folders.

A safetensors file is an 8-byte little-endian header length, a JSON header giving every
tensor's byte range, then the data; a file cut short or padded no longer ends where its
header says, which is checked here without reading the tensors."""

from __future__ import annotations

import hashlib
import json
import os
import struct

from petl.errors import CheckpointError


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def safetensors_problem(path: str) -> str | None:
    """Why `path` is not a whole safetensors file, or None when its header and size agree."""
    if not os.path.isfile(path):
        return "the file is missing"
    size = os.path.getsize(path)
    if size < 8:
        return f"the file has {size} bytes, fewer than a safetensors header"
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > size - 8:
            return f"the header claims {length} bytes but the file has {size} (truncated?)"
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "the header is not valid JSON (overwritten bytes?)"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
    ]
    expected = 8 + length + max(ends, default=0)
    if size != expected:
        return f"the file has {size} bytes but its header describes {expected} (truncated?)"
    return None


def check_writable(folder: str, what: str = "checkpoint_dir") -> None:
    """Creates `folder` if needed and writes (then removes) a probe file in it.

    Raises:
        CheckpointError: the folder cannot be created or written, naming it.
    """
    probe = os.path.join(folder, f".petl-write-probe-{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise CheckpointError(
            f"{what} {folder!r} cannot be written ({err.strerror or err}). Pick a folder you "
            "can write to (and with free space) before training starts."
        ) from None

"""The signature of a base model (architecture and sizes), saved beside every adapter as
petl_meta.json so that loading onto a different base model fails with a clear error, with
the sha256 of the adapter's weights file so that changed bytes are caught before loading."""

from __future__ import annotations

import json
import os
from typing import Any

from torch import nn

from petl.errors import IncompatibleModelError

META_NAME = "petl_meta.json"


def model_signature(model: nn.Module) -> dict[str, Any]:
    """What an adapter depends on: architecture and sizes of its base model."""
    config = getattr(model, "config", None)
    keys = (
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "d_model",
        "n_embd",
        "n_layer",
        "num_layers",
    )
    sig = {k: getattr(config, k) for k in keys if getattr(config, k, None) is not None}
    sig["class"] = type(model).__name__
    return sig


def save_meta(model: nn.Module, directory: str) -> None:
    """Writes petl_meta.json beside the adapter: the base model's signature."""
    get_base_model = getattr(model, "get_base_model", None)
    base = get_base_model() if callable(get_base_model) else model
    meta: dict[str, Any] = {"base_model": model_signature(base)}
    weights = os.path.join(directory, "adapter_model.safetensors")
    if os.path.exists(weights):  # lets petl.load tell changed bytes from the saved ones
        from petl.integrity import sha256_file

        meta["weights_sha256"] = sha256_file(weights)
    with open(os.path.join(directory, META_NAME), "w") as f:
        json.dump(meta, f, indent=2)


def check_meta(base_model: nn.Module, directory: str) -> None:
    path = os.path.join(directory, META_NAME)
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)["base_model"]
    now = model_signature(base_model)
    diffs = [
        f"{k}: saved {saved[k]!r}, given {now.get(k)!r}"
        for k in saved
        if k != "class" and saved[k] != now.get(k)
    ]
    if diffs:
        raise IncompatibleModelError(
            f"The adapter in {directory} was trained on another architecture or size "
            f"({'; '.join(diffs)}). Load it onto the base model it was saved from."
        )

"""One (de)serialisation of strategy state for checkpoints.

Strategies keep nested state: lists of per-task dicts of tensors (EWC's Fisher terms,
OLoRA's past LoRAs, TaskAdapters' store), optional tensors, indices and numbers. A
checkpoint part is one flat dict of tensors (saved as safetensors) and JSON values.
`pack` turns a nested value into that flat dict: every tensor under its path
("terms/0/1/<param name>"), and the nesting, with tensors replaced by their path, under
one JSON key; `unpack` inverts it. Tuples come back as lists."""

from __future__ import annotations

from typing import Any

import torch

TREE = "__tree__"
TENSOR = "__tensor__"


def pack(value: dict[str, Any]) -> dict[str, Any]:
    """A flat checkpoint part of a nested dict of tensors, lists, dicts and JSON scalars."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, torch.Tensor):
            tensors[path] = v.detach()
            return {TENSOR: path}
        if isinstance(v, dict):
            return {str(k): walk(x, f"{path}/{k}") for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x, f"{path}/{i}") for i, x in enumerate(v)]
        return v

    tree = {str(k): walk(v, str(k)) for k, v in value.items()}
    return {TREE: tree, **tensors}


def unpack(state: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """The nested dict `pack` flattened into `state`; `default` for an empty state (a
    checkpoint written before the strategy kept anything). Keys missing from the saved
    state take their value from `default`."""
    if TREE not in state:
        return dict(default)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {TENSOR}:
                return state[v[TENSOR]]
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return {**default, **walk(state[TREE])}

"""The shape of petl's native adapter layers (a wrapper holding `base_layer`), found
structurally: what `PetlModel` and the adapter checks in petl/methods/present.py share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Protocol, cast

from torch import nn


class AdapterLayer(Protocol):
    """What a native wrapper layer offers; found structurally, never by inheritance."""

    base_layer: nn.Module
    merged: bool
    disabled: bool
    adapter_prefix: ClassVar[str]

    def merge(self) -> None: ...

    def unmerge(self) -> None: ...


def adapter_layers(model: nn.Module) -> Iterator[tuple[str, AdapterLayer]]:
    for name, module in model.named_modules():
        if hasattr(module, "base_layer") and hasattr(module, "adapter_prefix"):
            yield name, cast(AdapterLayer, module)


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)

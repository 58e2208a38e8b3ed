"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020): a small down-project,
non-linearity, up-project block added after a layer's output, with a residual connection.

Houlsby places one after the attention output and one after the feed-forward output of
every block; Pfeiffer only after the feed-forward output. The up-projection starts at zero,
so a fresh adapter leaves the model's outputs unchanged."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, cast

import torch
from torch import nn

from petl.errors import ConfigError
from petl.methods.layers import replace_module
from petl.methods.native import NativeConfig
from petl.methods.targets import bottleneck_targets, find_targets

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


@dataclasses.dataclass
class BottleneckConfig(NativeConfig):
    """Bottleneck adapter options.

    Attributes:
        style: 'houlsby' (after attention and feed-forward) or 'pfeiffer' (feed-forward).
        reduction_factor: hidden size / bottleneck size.
        activation: one of relu, gelu, tanh, silu.
        residual: add the adapter output to its input (standard); False replaces it.
        dropout: dropout on the adapter's input.
    """

    method: ClassVar[str] = "bottleneck"
    style: str = "houlsby"
    reduction_factor: int = 16
    activation: str = "relu"
    residual: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.style not in ("houlsby", "pfeiffer"):
            raise ConfigError(
                f"bottleneck style must be 'houlsby' or 'pfeiffer', got {self.style!r}."
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"bottleneck activation {self.activation!r} unknown; choose from {sorted(ACTIVATIONS)}."
            )
        if not isinstance(self.reduction_factor, int) or self.reduction_factor < 1:
            raise ConfigError(
                f"reduction_factor must be a positive int, got {self.reduction_factor!r}."
            )


def _out_features(layer: nn.Module) -> int:
    for attr in ("out_features", "nf", "out_channels", "embedding_dim"):
        if hasattr(layer, attr):
            return int(getattr(layer, attr))
    raise ConfigError(f"Cannot place a bottleneck adapter after a {type(layer).__name__}.")


class BottleneckLayer(nn.Module):
    """Wraps `base_layer`: y = f(x); return y + up(act(down(dropout(y))))."""

    adapter_prefix: ClassVar[str] = "bottleneck_"

    def __init__(self, base_layer: nn.Module, config: BottleneckConfig) -> None:
        super().__init__()
        self.base_layer = base_layer
        hidden = _out_features(base_layer)
        size = max(1, hidden // config.reduction_factor)
        self.bottleneck_down = nn.Linear(hidden, size)
        self.bottleneck_up = nn.Linear(size, hidden)
        self.bottleneck_act = ACTIVATIONS[config.activation]()
        self.bottleneck_dropout = nn.Dropout(config.dropout)
        self.residual = config.residual
        nn.init.normal_(self.bottleneck_down.weight, std=1e-2)
        nn.init.zeros_(self.bottleneck_down.bias)
        nn.init.zeros_(self.bottleneck_up.weight)
        nn.init.zeros_(self.bottleneck_up.bias)
        self.merged = False  # non-linear: never mergeable
        self.disabled = False

    @property
    def weight(self) -> torch.Tensor:
        """The wrapped layer's weight: models read it (e.g. T5 checks `wo.weight.dtype`)."""
        return cast(torch.Tensor, self.base_layer.weight)

    def merge(self) -> None:
        raise ConfigError(
            "Bottleneck adapters are non-linear and cannot be merged into the base weights; "
            "keep them unmerged (LoRA, IA3 and BitFit can merge)."
        )

    def unmerge(self) -> None:
        return None

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        y = self.base_layer(x, *args, **kwargs)
        if self.disabled:
            return y
        delta = self.bottleneck_up(
            self.bottleneck_act(self.bottleneck_down(self.bottleneck_dropout(y)))
        )
        return y + delta if self.residual else delta


def inject(model: nn.Module, config: BottleneckConfig) -> list[str]:
    """Wraps the target layers of `model` in place; returns their names."""
    targets = config.target_modules or bottleneck_targets(model, config.style)
    names = find_targets(model, targets)
    for name in names:
        layer = model.get_submodule(name)
        replace_module(model, name, BottleneckLayer(layer, config))
    return names

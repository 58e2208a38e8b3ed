"""BitFit (Ben Zaken et al. 2022): train only bias terms.

Each biased layer is wrapped so that it adds a trainable `bitfit_bias` (starting at zero)
to its output while its original bias stays frozen. Training the offset is the same
optimisation as training the bias itself, and it lets the adapter be saved alone,
disabled, merged into the bias and unmerged exactly, like any peft method."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, cast

import torch
from torch import nn

from petl.errors import IncompatibleModelError
from petl.methods.layers import replace_module
from petl.methods.native import NativeConfig
from petl.methods.targets import matches


@dataclasses.dataclass
class BitFitConfig(NativeConfig):
    """BitFit options.

    Attributes:
        target_modules: Restrict training to the biases of these layers (suffix list or
            full-match regex); None trains every bias of the model except the head's,
            which is trained in full as a saved module.
    """

    method: ClassVar[str] = "bitfit"


class BitFitLayer(nn.Module):
    """Wraps a biased `base_layer`: returns base_layer(x) + bitfit_bias."""

    adapter_prefix: ClassVar[str] = "bitfit_"

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.bitfit_bias = nn.Parameter(torch.zeros_like(_bias(base_layer)))
        self.merged = False
        self.disabled = False

    @property
    def weight(self) -> torch.Tensor:
        """The wrapped layer's weight: models read it (e.g. ViT's `projection.weight.dtype`)."""
        return cast(torch.Tensor, self.base_layer.weight)

    def merge(self) -> None:
        with torch.no_grad():
            _bias(self.base_layer).add_(self.bitfit_bias)
        self.merged = True

    def unmerge(self) -> None:
        with torch.no_grad():
            _bias(self.base_layer).sub_(self.bitfit_bias)
        self.merged = False

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        y = self.base_layer(x, *args, **kwargs)
        bias: torch.Tensor = self.bitfit_bias
        if isinstance(self.base_layer, _CHANNEL_FIRST):  # (N, C, ...): bias runs along dim 1
            bias = bias.view(-1, *([1] * (y.dim() - 2)))
        if self.disabled or self.merged:
            if self.disabled and self.merged:
                return y - bias
            return y
        return y + bias


# Layers whose bias is added along the channel dimension, not the last one.
_CHANNEL_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm)


def _bias(layer: nn.Module) -> torch.Tensor:
    return cast(torch.Tensor, layer.bias)


def _has_bias(module: nn.Module) -> bool:
    bias = getattr(module, "bias", None)
    return isinstance(bias, nn.Parameter) and bias.dim() == 1


def inject(model: nn.Module, config: BitFitConfig) -> list[str]:
    """Wraps every biased layer (optionally only the targets); returns their names."""
    skip = set(config.modules_to_save or [])
    names = []
    for name, module in list(model.named_modules()):
        if not name or not _has_bias(module) or any(p in skip for p in name.split(".")):
            continue
        if config.target_modules is not None and not matches(name, config.target_modules):
            continue
        names.append(name)
    if not names:
        from petl.methods.targets import no_match_error

        if config.target_modules is not None:
            raise no_match_error(model, config.target_modules)
        raise IncompatibleModelError(
            f"{type(model).__name__} has no bias parameters, so BitFit has nothing to train "
            "(Llama- and T5-style models are bias-free). Use 'lora' or 'ia3' instead."
        )
    for name in names:
        replace_module(model, name, BitFitLayer(model.get_submodule(name)))
    return names

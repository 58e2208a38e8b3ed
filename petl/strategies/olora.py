"""O-LoRA (Wang et al. 2023): each task learns a fresh LoRA whose subspace is kept
orthogonal to the subspaces of earlier tasks' LoRAs.

While training task t the loss gains
    lam_orth * sum_layers sum_{k<t} sum |A_t A_k^T|     (orthogonality of the A rows)
  + lam_l2   * sum ||theta_t||^2                        (L2 on the new LoRA)
After each task its update (scaling * B A) is folded into the frozen base weights, which
is the O-LoRA model (base plus every task's LoRA), and the LoRA restarts as a fresh one
(A drawn anew as peft draws it, from a generator seeded by the run's seed and the task;
B = 0): a new task starting from the previous A would start inside the old subspace.
Earlier tasks' A and B are kept (small) and re-applied when a run resumes.

O-LoRA protects the backbone, not a classifier head: in its paper the output layer is a
frozen LM head and every input carries its task's instruction. With petl's task heads
it is meant for task-incremental streams (or the generation family); in class-incremental
classification the shared head's bias towards the newest classes still forgets."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from petl.errors import ConfigError, IncompatibleModelError
from petl.strategies.base import Strategy
from petl.strategies.state import pack, unpack

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


def lora_layers(model: torch.nn.Module) -> dict[str, Any]:
    """peft LoRA layers of the "default" adapter whose update is exactly scaling * B @ A
    (plain LoRA: not AdaLoRA's SVD triplets, not DoRA's rescaled weights)."""
    return {
        n: m
        for n, m in model.named_modules()
        if hasattr(m, "base_layer")
        and isinstance(getattr(m, "lora_A", None), nn.ModuleDict)
        and "default" in m.lora_A
        and isinstance(m.lora_A["default"], nn.Linear)
        and not getattr(m, "use_dora", {}).get("default", False)
    }


def fold(layer: Any, a: torch.Tensor, b: torch.Tensor) -> None:
    """Adds scaling * B @ A to the layer's frozen base weight."""
    delta = (b @ a) * layer.scaling["default"]
    if getattr(layer, "fan_in_fan_out", False):
        delta = delta.T
    with torch.no_grad():
        layer.get_base_layer().weight.add_(delta.to(layer.get_base_layer().weight.dtype))


class OLoRA(Strategy):
    """Orthogonal subspace LoRA. Needs method="lora"."""

    name = "olora"

    def __init__(self, lam_orth: float = 0.5, lam_l2: float = 0.0) -> None:
        if lam_orth < 0 or lam_l2 < 0:
            raise ConfigError(
                f"OLoRA needs lam_orth >= 0 and lam_l2 >= 0; got {lam_orth!r}, {lam_l2!r}."
            )
        self.lam_orth, self.lam_l2 = lam_orth, lam_l2
        self._past: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = []
        self._seed = 0

    @staticmethod
    def check_method(method: str | None) -> None:
        """Refuses a method without plain LoRA layers before any model is built (`petl
        bench` asks every strategy that has this check when a config is loaded)."""
        if method != "lora":
            raise ConfigError(
                f"strategy 'olora' needs method 'lora', got {method or 'none'!r}. "
                "Use task_adapters for other methods."
            )

    def setup(self, learner: LearnerView) -> None:
        layers = lora_layers(learner.model)
        if not layers:
            raise IncompatibleModelError(
                f"OLoRA needs plain LoRA layers (method='lora', without DoRA), but "
                f"method={learner.method!r} has none. Use method='lora' with OLoRA, or "
                "TaskAdapters for other methods."
            )
        self._layers = layers
        self._seed = learner.config.seed

    def before_task(self, learner: LearnerView, t: int) -> None:
        """A fresh LoRA for task t > 0 (task 0 keeps peft's own initialisation)."""
        if t == 0:
            return
        gen = torch.Generator().manual_seed(self._seed * 1_000_003 + t)
        with torch.no_grad():
            for name in sorted(self._layers):
                layer = self._layers[name]
                a = layer.lora_A["default"].weight
                fresh = torch.empty(a.shape, dtype=torch.float32)
                nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=gen)  # as peft does
                a.copy_(fresh.to(a.dtype))
                layer.lora_B["default"].weight.zero_()

    def penalty(self) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        orth: torch.Tensor | float = 0.0
        l2: torch.Tensor | float = 0.0
        for name, layer in self._layers.items():
            a = layer.lora_A["default"].weight
            for past in self._past:
                orth = orth + (a @ past[name][0].to(a.device).T).abs().sum()
            if self.lam_l2:
                l2 = l2 + a.pow(2).sum() + layer.lora_B["default"].weight.pow(2).sum()
        return orth, l2

    def loss(
        self, learner: LearnerView, batch: Any, logits: torch.Tensor, loss: torch.Tensor
    ) -> torch.Tensor:
        orth, l2 = self.penalty()
        return loss + self.lam_orth * orth + self.lam_l2 * l2

    def after_task(self, learner: LearnerView, t: int) -> None:
        current = {
            n: (
                m.lora_A["default"].weight.detach().clone(),
                m.lora_B["default"].weight.detach().clone(),
            )
            for n, m in self._layers.items()
        }
        for name, (a, b) in current.items():
            fold(self._layers[name], a, b)
        self._past.append(current)
        self.before_task(learner, t + 1)

    def state_dict(self) -> dict[str, Any]:
        return pack({"past": self._past})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        past = unpack(state, {"past": []})["past"]
        self._past = [{n: (a, b) for n, (a, b) in layers.items()} for layers in past]
        for layers in self._past:
            for name, (a, b) in layers.items():
                fold(self._layers[name], a, b)

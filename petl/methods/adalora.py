"""Everything AdaLoRA needs beyond a plain peft tuner, in one place (the registry names
this module as AdaLoRA's `hooks`; nothing else in petl knows AdaLoRA by name).

- `training_options`: peft's AdaLoRA needs `total_step` in its config; the trainer knows
  it, so `petl.Learner` fills it in.
- `training_hooks`: two things a model computing its own loss would do for itself, and
  petl (which computes the loss outside, over task heads) must do: the orthogonality
  regulariser on the loss, and `update_and_allocate(step)` after every optimizer step,
  which scores ranks from the gradients (so before they are cleared) and masks the lowest.
  `petl.strategies.protocol.method_hooks` adds them to the loop's hooks.
- `after_load`: peft's AdaLoRA forward needs `trainable_adapter_name` whenever a loss is
  computed, which a frozen loaded adapter lacks."""

from __future__ import annotations

from typing import Any

import torch


def training_options(total_steps: int) -> dict[str, Any]:
    """Config options only the trainer knows: the number of optimizer steps."""
    return {"total_step": total_steps}


def training_hooks(model: Any) -> AdaLoRABudget | None:
    """The budget hooks of `model`'s AdaLoRA layers, or None if it has none."""
    return AdaLoRABudget.of(model)


def after_load(model: Any, adapter_name: str, is_trainable: bool) -> None:
    """Makes a loaded AdaLoRA model able to compute a loss in inference mode."""
    if not is_trainable:
        model.base_model.trainable_adapter_name = adapter_name


class AdaLoRABudget:
    """The `loss` and `after_step` hooks of a peft AdaLoRA model."""

    name = "adalora_budget"
    shard_aware = True  # gathers the LoRA weights and gradients under FSDP

    def __init__(self, adalora: Any) -> None:
        self.adalora = adalora

    @classmethod
    def of(cls, model: Any) -> AdaLoRABudget | None:
        """The hooks for `model`'s AdaLoRA layers, or None if it has none."""
        backbone = getattr(model, "backbone", model)
        inner = getattr(backbone, "base_model", None)
        return cls(inner) if hasattr(inner, "update_and_allocate") else None

    def loss(self, learner: Any, batch: Any, logits: Any, loss: torch.Tensor) -> torch.Tensor:
        return loss + orth_loss(self.adalora)

    def after_step(self, learner: Any) -> None:
        from petl.training import sharding

        # under FSDP peft reads and masks full LoRA weights and gradients (gathered, then
        # each process keeps its shard of the masked weights)
        with sharding.full_parameters(learner, lambda name: "lora_" in name):
            self.adalora.update_and_allocate(learner.global_step)


def orth_loss(adalora: Any) -> torch.Tensor | float:
    """AdaLoRA's orthogonality regulariser, which peft adds only when the model computes
    the loss itself (petl computes it outside, over task heads)."""
    name = adalora.trainable_adapter_name
    weight = adalora.peft_config[name].orth_reg_weight
    terms = []
    for n, p in adalora.model.named_parameters():
        if ("lora_A" in n or "lora_B" in n) and name in n and p.requires_grad:
            cov = p @ p.T if "lora_A" in n else p.T @ p
            terms.append(torch.norm(cov - torch.eye(cov.shape[0], device=cov.device), p="fro"))
    return weight * torch.stack(terms).mean() if terms else 0.0

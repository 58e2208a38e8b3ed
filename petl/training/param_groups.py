"""Optimizer parameter groups with per-group learning-rate scales declared by strategies.

A strategy may declare `lr_scales`, a dict from parameter-name prefix to a multiplier of
`TrainConfig.lr`: SLCA's slow learner declares `{"backbone.": 0.01}` so that the PEFT
parameters move at 1/100 of the heads' rate. Declared, not set in a hook, so that a resumed
run builds the same groups (the optimizer state is restored group by group). Without any
declaration the optimizer gets one group, exactly as before."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from petl.errors import ConfigError

if TYPE_CHECKING:
    from petl.training.learner import Learner


def lr_scale(name: str, strategies: list[Any]) -> float:
    """The product, over strategies, of the multiplier of the longest prefix of `name`
    each declares (1 where none matches)."""
    scale = 1.0
    for s in strategies:
        table = getattr(s, "lr_scales", None) or {}
        matches = [prefix for prefix in table if name.startswith(prefix)]
        if matches:
            scale *= float(table[max(matches, key=len)])
    return scale


def param_groups(learner: Learner, lr: float) -> list[Any]:
    """The trainable parameters, as one plain list (no declared scales) or as groups of
    equal scale in model order, each with its own `lr`."""
    named = [(n, p) for n, p in learner.model.named_parameters() if p.requires_grad]
    scales = [lr_scale(n, learner.strategies) for n, _ in named]
    if all(s == 1.0 for s in scales):
        return [p for _, p in named]
    if any(s <= 0 for s in scales):
        raise ConfigError(f"lr_scales must be positive; got {sorted(set(scales))}.")
    groups: dict[float, list[Any]] = {}
    for (_, p), s in zip(named, scales, strict=True):
        groups.setdefault(s, []).append(p)
    return [{"params": ps, "lr": lr * s} for s, ps in groups.items()]

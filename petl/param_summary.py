"""`petl.summary`: how many parameters a model trains, and where they are.

The module is not named `summary` so that it never shadows the function `petl.summary`
(importing a submodule rebinds the package attribute of the same name)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from petl.heads import HEAD_MODULES
from petl.methods import weight_parts


@dataclass
class Summary:
    """Parameter counts of a model; `str()` gives a small table."""

    method: str
    total: int
    trainable: int
    by_part: dict[str, int] = field(default_factory=dict)

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "total": self.total,
            "trainable": self.trainable,
            "trainable_percent": 100 * self.trainable_fraction,
            "by_part": self.by_part,
        }

    def __str__(self) -> str:
        rows = [
            f"method: {self.method}",
            f"trainable: {self.trainable:,} of {self.total:,} "
            f"({100 * self.trainable_fraction:.3f}%)",
        ]
        rows += [f"  {part:<12} {count:>12,}" for part, count in self.by_part.items()]
        return "\n".join(rows)


def method_name(model: nn.Module) -> str:
    petl_config = getattr(model, "petl_config", None)
    if petl_config is not None:
        return str(petl_config.method)
    config = getattr(model, "peft_config", None)
    if isinstance(config, dict) and config:
        names = {str(c.peft_type.value).lower() for c in config.values()}
        return "+".join(sorted(names))
    return "full" if any(p.requires_grad for p in model.parameters()) else "frozen"


def _part(name: str, prefixes: dict[str, str]) -> str:
    """The part a parameter belongs to: the head, a method's adapter (by the registry's
    weight prefixes), petl's task heads, or the backbone."""
    parts = name.split(".")
    if any(p in HEAD_MODULES or p == "modules_to_save" for p in parts):
        return "head"
    for prefix, part in prefixes.items():
        if any(p.startswith(prefix) for p in parts):
            return part
    return "heads" if "heads" in parts else "backbone"


def summary(model: nn.Module) -> Summary:
    """Counts total and trainable parameters, with the trainable ones split by part
    (adapter kind, head, backbone). Shared tensors are counted once."""
    seen: set[int] = set()
    total = trainable = 0
    by_part: dict[str, int] = {}
    prefixes = weight_parts()
    for name, param in model.named_parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
            part = _part(name, prefixes)
            by_part[part] = by_part.get(part, 0) + param.numel()
    return Summary(method_name(model), total, trainable, by_part)

"""The method registry: every PEFT method petl can apply, by name.

Adding a method means writing one file with a config dataclass and an `inject(model,
config)` function, then one `register(...)` line below."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from petl.errors import unknown_choice
from petl.methods import bitfit, bottleneck
from petl.methods.native import NativeConfig


@dataclass(frozen=True)
class MethodSpec:
    """What petl knows of a method: where it comes from and what it can do."""

    name: str
    backend: str  # "peft" or "petl"
    mergeable: bool
    summary: str
    native_config: type[NativeConfig] | None = None
    inject: Any = None


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> None:
    METHODS[spec.name] = spec


def get_method(name: str) -> MethodSpec:
    key = name.lower().replace("-", "_")
    key = {"prompt": "prompt_tuning", "prefix": "prefix_tuning", "ptuning": "p_tuning"}.get(
        key, key
    )
    if key not in METHODS:
        raise unknown_choice("method", name, METHODS)
    return METHODS[key]


register(
    MethodSpec("lora", "peft", True, "Low-rank update of weight matrices (DoRA, rsLoRA as options)")
)
register(MethodSpec("adalora", "peft", True, "LoRA with an adaptive rank budget"))
register(MethodSpec("ia3", "peft", True, "Learned rescaling of keys, values and feed-forward"))
register(MethodSpec("prompt_tuning", "peft", False, "Trainable soft prompt tokens"))
register(MethodSpec("prefix_tuning", "peft", False, "Trainable key/value prefixes (decoders)"))
register(MethodSpec("p_tuning", "peft", False, "Soft prompts from a small prompt encoder"))
register(
    MethodSpec(
        "bottleneck",
        "petl",
        False,
        "Houlsby/Pfeiffer bottleneck adapters",
        bottleneck.BottleneckConfig,
        bottleneck.inject,
    )
)
register(
    MethodSpec("bitfit", "petl", True, "Bias-only training", bitfit.BitFitConfig, bitfit.inject)
)

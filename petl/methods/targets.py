"""Which modules of a model an adapter attaches to: defaults per architecture, matching, and
the error that lists candidates when a user's target modules match nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from petl.errors import ConfigError

# Module names of the attention output projection and the feed-forward output projection.
# Bottleneck adapters sit after these (Houlsby: both; Pfeiffer: feed-forward only).
BOTTLENECK_PLACEMENTS: dict[str, dict[str, str]] = {
    "bert": {"attn": r"attention\.output\.dense", "ffn": r"layer\.\d+\.output\.dense"},
    "roberta": {"attn": r"attention\.output\.dense", "ffn": r"layer\.\d+\.output\.dense"},
    "xlm-roberta": {"attn": r"attention\.output\.dense", "ffn": r"layer\.\d+\.output\.dense"},
    "electra": {"attn": r"attention\.output\.dense", "ffn": r"layer\.\d+\.output\.dense"},
    # ViT renamed its layers in transformers 5 (attention.o_proj, mlp.fc2): match both.
    "vit": {
        "attn": r"attention\.(output\.dense|o_proj)",
        "ffn": r"(layer\.\d+\.output\.dense|mlp\.fc2)",
    },
    "distilbert": {"attn": r"attention\.out_lin", "ffn": r"ffn\.lin2"},
    "gpt2": {"attn": r"attn\.c_proj", "ffn": r"mlp\.c_proj"},
    "llama": {"attn": r"self_attn\.o_proj", "ffn": r"mlp\.down_proj"},
    "mistral": {"attn": r"self_attn\.o_proj", "ffn": r"mlp\.down_proj"},
    "qwen2": {"attn": r"self_attn\.o_proj", "ffn": r"mlp\.down_proj"},
    "t5": {"attn": r"SelfAttention\.o", "ffn": r"DenseReluDense\.wo"},
}

# LoRA-style defaults for architectures peft's own table lacks (peft's table wins otherwise).
EXTRA_LORA_TARGETS: dict[str, list[str]] = {
    "vit": ["query", "value", "q_proj", "v_proj"],  # transformers 4 and 5 names
    "electra": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
}

_ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Embedding)


def model_type(model: nn.Module) -> str:
    """The transformers `model_type` of a model, or '' for plain torch modules."""
    config = getattr(model, "config", None)
    return str(getattr(config, "model_type", "") or "")


def is_adaptable(module: nn.Module) -> bool:
    """True for layers that weight adapters can wrap (Linear, GPT-2's Conv1D, ...)."""
    return isinstance(module, _ADAPTABLE) or type(module).__name__ == "Conv1D"


def candidate_names(model: nn.Module, limit: int = 12) -> list[str]:
    """Distinct suffixes of adaptable layer names (e.g. 'query', 'output.dense'): every
    last name first, then two-part ones, so that no layer kind is cut off by the limit."""
    leaves: dict[str, None] = {}
    shorts: dict[str, None] = {}
    for name, module in model.named_modules():
        if name and is_adaptable(module):
            parts = name.split(".")
            leaves.setdefault(parts[-1], None)
            shorts.setdefault(".".join(p for p in parts[-2:] if not p.isdigit()), None)
    return [*leaves, *(s for s in shorts if s not in leaves)][:limit]


def norm_names(model: nn.Module) -> list[str]:
    """Distinct last names of the normalisation layers (LayerNorm, RMSNorm, ...): the
    default targets of layer-norm tuning, where peft has none for many architectures."""
    names: dict[str, None] = {}
    for name, module in model.named_modules():
        if name and "norm" in type(module).__name__.lower():
            names.setdefault(name.split(".")[-1], None)
    return list(names)


def matches(name: str, targets: str | Sequence[str]) -> bool:
    """peft's target semantics: a string is a full-match regex, a list matches name suffixes."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def find_targets(model: nn.Module, targets: str | Sequence[str]) -> list[str]:
    """Names of modules matching `targets`; raises a ConfigError listing candidates if none."""
    found = [n for n, _ in model.named_modules() if n and matches(n, targets)]
    if not found:
        raise no_match_error(model, targets)
    return found


def no_match_error(model: nn.Module, targets: object) -> ConfigError:
    return ConfigError(
        f"target_modules={targets!r} matched no module of this "
        f"{type(model).__name__}. Candidate module names: "
        f"{', '.join(candidate_names(model))}. Pass some of these as target_modules "
        "(a list matches name suffixes, a string is a full-match regex)."
    )


def bottleneck_targets(model: nn.Module, style: str) -> str:
    """Default regex of bottleneck placements for a known architecture."""
    kind = model_type(model)
    if kind not in BOTTLENECK_PLACEMENTS:
        raise ConfigError(
            f"No default bottleneck placement for model_type {kind!r} (known: "
            f"{', '.join(sorted(BOTTLENECK_PLACEMENTS))}). Pass target_modules naming the "
            f"attention and feed-forward output layers; candidates: "
            f"{', '.join(candidate_names(model))}."
        )
    places = BOTTLENECK_PLACEMENTS[kind]
    keys = ["attn", "ffn"] if style == "houlsby" else ["ffn"]
    return r".*(" + "|".join(f"{places[k]}" for k in keys) + r")"

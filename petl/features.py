"""Sentence features: the pooled representation each backbone is made for.

A classification backbone's last linear layer is replaced by petl's task heads; what the
heads (and the statistic-head strategies: NCM, FeCAM, RanPAC, APER) see is chosen by
`TrainConfig.pooling`:

    "head"  the input of the model's own classification layer: the BERT pooler
            (tanh(W h_CLS)), RoBERTa's classifier.dense on <s>, the last non-pad token for
            causal LMs. Right for checkpoints fine-tuned as classifiers.
    "mean"  the mean of the last hidden states over the attention mask: what
            sentence-transformers models (all-MiniLM-L6-v2, ...) were trained to produce.
    "cls"   the last hidden state of the first token.
    "last"  the last hidden state of the last non-pad token (causal LMs, right padding).
    "auto"  (default) a sentence-transformers folder (modules.json with a 1_Pooling module)
            gets the pooling its 1_Pooling/config.json names; every other model gets "head".

Why "auto" matters: all-MiniLM-L6-v2 ships pooler weights that sentence-transformers never
used (they come from the MiniLM pre-training checkpoint), so "head" put an untuned
tanh(W h_CLS) in front of every head; its mean-pooled embedding is the one that was trained.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from petl.errors import ConfigError, unknown_choice
from petl.training.config import POOLINGS
from petl.training.data import make_loader

# sentence-transformers 1_Pooling/config.json flags -> petl pooling, in the order checked.
ST_MODES = (
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_lasttoken", "last"),
)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values")
LAYER_CHOICES = ("last", "all")


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise unknown_choice("pooling", pooling, POOLINGS)


def sentence_transformers_pooling(folder: str) -> str | None:
    """The pooling a sentence-transformers model folder declares, or None when `folder` is
    not one. Modes petl does not implement (max, weighted mean) raise ConfigError."""
    modules = os.path.join(folder, "modules.json")
    if not os.path.isfile(modules):
        return None
    with open(modules, encoding="utf-8") as f:
        entries = json.load(f)
    pooling_dirs = [e.get("path", "") for e in entries if "Pooling" in str(e.get("type", ""))]
    if not pooling_dirs:
        return None
    config_path = os.path.join(folder, pooling_dirs[0], "config.json")
    if not os.path.isfile(config_path):
        return None
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    for flag, mode in ST_MODES:
        if config.get(flag):
            return mode
    raise ConfigError(
        f"{config_path} asks for a pooling petl does not implement "
        f"({sorted(k for k, v in config.items() if v is True)}). Set TrainConfig.pooling to "
        f"one of {', '.join(POOLINGS[1:])}."
    )


def resolve_pooling(pooling: str, source: Any, backbone: Any = None) -> str:
    """Turns "auto" into a concrete pooling for a model given as a path (`source`) or an
    object (its config's `_name_or_path` is tried as a folder)."""
    check_pooling(pooling)
    if pooling != "auto":
        return pooling
    folders = [source] if isinstance(source, str) else []
    name = getattr(getattr(backbone, "config", None), "_name_or_path", None)
    if isinstance(name, str) and name:
        folders.append(name)
    for folder in folders:
        if os.path.isdir(folder):
            mode = sentence_transformers_pooling(folder)
            if mode is not None:
                return mode
    return "head"


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pools last hidden states [B, L, H] over an attention mask [B, L] into [B, H]."""
    if hidden.shape[1] > mask.shape[1]:
        # prompt tuning prepends virtual tokens to the hidden states, not to the mask
        hidden = hidden[:, -mask.shape[1] :]
    mask = mask.to(hidden.dtype)
    if pooling == "mean":
        total = (hidden * mask.unsqueeze(-1)).sum(1)
        return total / mask.sum(1, keepdim=True).clamp(min=1)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device, dtype=hidden.dtype)
        last = (mask * (positions + 1)).argmax(1)  # the last position whose mask is 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise unknown_choice("pooling", pooling, POOLINGS[1:])


def freeze_unused_pooler(backbone: Any, pooling: str) -> list[str]:
    """Freezes the model's own pooler (e.g. BERT's dense + tanh over [CLS], which only its
    classification head reads) when the heads see pooled hidden states ("mean", "cls",
    "last"): it never gets a gradient then, so trainable it would be counted, handed to
    AdamW for nothing, and refused by DDP ("parameters that did not receive grad").
    Returns the names frozen."""
    if pooling == "head":
        return []
    frozen = []
    for name, module in backbone.named_modules():
        if name.rsplit(".", 1)[-1] != "pooler":
            continue
        for pname, p in module.named_parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen.append(f"{name}.{pname}")
    return frozen


LayerSpec = str | Sequence[int]


def check_layers(layers: Any) -> None:
    """Raises ConfigError unless `layers` is "last", "all" or a non-empty list of ints."""
    if isinstance(layers, str):
        ok = layers in LAYER_CHOICES
    else:
        ok = (
            isinstance(layers, Sequence)
            and len(layers) > 0
            and all(isinstance(i, int) and not isinstance(i, bool) for i in layers)
        )
    if not ok:
        raise ConfigError(
            f"layers must be 'last', 'all' or a non-empty list of hidden-state indices "
            f"(0 = embeddings, 1..L = transformer layers, -1 = the last), got {layers!r}."
        )


def select_layers(layers: LayerSpec, count: int) -> list[int]:
    """Indices into a model's `hidden_states` (embeddings + `count - 1` layers) that
    `layers` names; "all" is every transformer layer (the embeddings are left out)."""
    if isinstance(layers, str):
        return [count - 1] if layers == "last" else list(range(1, count))
    picked: list[int] = []
    for i in layers:
        if not -count <= i < count:
            raise ConfigError(
                f"layers asks for hidden state {i}, but the model has {count} (0 = embeddings, "
                f"1..{count - 1} = its transformer layers; -1 = the last)."
            )
        picked.append(i % count)
    return picked


def backbone_features(
    backbone: Any,
    batch: dict[str, torch.Tensor],
    pooling: str = "head",
    layers: LayerSpec = "last",
) -> torch.Tensor:
    """Features of a batch: the output of the backbone whose final layer is Identity
    ("head"), or its last hidden states pooled over the attention mask: [B, H].

    With `layers` other than "last" the result is [B, k, H]: each named hidden state pooled
    the same way (under "head" pooling the last layer is the head's input and earlier
    layers are mean-pooled, since they have no pooler of their own)."""
    inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
    if pooling == "head" and layers == "last":
        return backbone(**inputs).logits
    out = backbone(**inputs, output_hidden_states=True)
    if layers == "last":
        return pool(out.hidden_states[-1], batch["attention_mask"], pooling)
    states = out.hidden_states
    mask = batch.get("attention_mask")
    if mask is None:  # images: every position counts
        mask = torch.ones(states[0].shape[:2], dtype=torch.long, device=states[0].device)
    parts = []
    for i in select_layers(layers, len(states)):
        if pooling == "head" and i == len(states) - 1:
            parts.append(out.logits)
        else:
            parts.append(pool(states[i], mask, "mean" if pooling == "head" else pooling))
    return torch.stack(parts, 1)


def iter_features(
    learner: Any, rows: Sequence[Any], pretrained: bool = False, layers: LayerSpec = "last"
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(features [B, H] float32 on CPU, labels [B]) of `rows`, batch by batch, in row order,
    gathered from every process (each process computes part of each batch; every process
    receives all of it). Eval mode, no gradient. With `pretrained`, the PEFT adapters are
    disabled for the pass (the features of the pretrained backbone). With `layers` other
    than "last", features are [B, k, H], one pooled vector per named hidden state."""
    if not rows:
        return
    model = learner.model
    acc = learner.accelerator
    loader = acc.prepare_data_loader(
        make_loader(
            rows, learner.config.eval_batch_size, learner.pad_id, collate_fn=learner.family.collate
        )
    )
    for batch in loader:
        # Every context is entered and left within one batch: a consumer may interleave
        # two of these generators (adapted and pretrained features), and a grad mode or an
        # adapter switch held across a `yield` would leak into the other one.
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), adapters_disabled(model.backbone, pretrained), acc.autocast():
                feats = model.features(batch) if layers == "last" else model.features(batch, layers)
            feats = acc.gather_for_metrics(feats.float().contiguous()).cpu()
            labels = acc.gather_for_metrics(batch["labels"].contiguous()).cpu()
        finally:
            model.train(was_training)
        yield feats, labels


def features_for(
    learner: Any, rows: Sequence[Any], pretrained: bool = False, layers: LayerSpec = "last"
) -> torch.Tensor:
    """All features of `rows` as one [N, H] (or [N, k, H]) float32 CPU tensor (see
    `iter_features`)."""
    parts = [f for f, _ in iter_features(learner, rows, pretrained, layers)]
    if not parts:
        return torch.zeros(0, 0)
    return torch.cat(parts)


class adapters_disabled:
    """Context manager: a peft model's adapters off while it is active (when `on`)."""

    def __init__(self, backbone: Any, on: bool) -> None:
        self.ctx = None
        if on:
            disable = getattr(backbone, "disable_adapter", None)
            if disable is None:
                raise ConfigError(
                    f"Pretrained features need a PEFT method whose adapters can be switched "
                    f"off; {type(backbone).__name__} has none (full fine-tuning changes the "
                    "weights themselves). Use a peft method (e.g. method='lora') or turn the "
                    "pretrained features off."
                )
            self.ctx = disable()

    def __enter__(self) -> None:
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(*exc)

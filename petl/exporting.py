"""`petl.export`: a trained learner as a plain transformers model that loads and predicts
without petl. (The module is not named `export` so that it never shadows the function.)

The adapter is merged into the base weights (every method the registry marks mergeable;
full fine-tuning needs nothing) and petl's task heads are written back as the model's own
classification layer, with `id2label` naming every column. The folder is what `save_pretrained` writes,
plus the tokenizer and `petl_export.json` (labels, scenario, and for generation the prompt
template and each task's instruction)."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import torch
from torch import nn

from petl.errors import ConfigError

EXPORT_INFO = "petl_export.json"


def _merged_backbone(learner: Any, head: tuple[torch.Tensor, torch.Tensor] | None) -> nn.Module:
    """A merged copy of the learner's backbone with `head` (weight, bias) written back as
    its final layer (the learner itself is left as it is)."""
    backbone = copy.deepcopy(learner.model.backbone).cpu()
    if head is not None:
        _write_head(backbone, *head)
    if learner.method is None:
        return backbone
    config = getattr(backbone, "active_peft_config", None)
    if getattr(config, "is_prompt_learning", False):
        raise ConfigError(
            f"Method {learner.method!r} adds virtual tokens, which cannot be merged into a plain "
            "transformers model: keep the adapter (petl.save / Learner.save) instead."
        )
    spec = _spec(backbone)
    if spec is not None and spec.backend == "peft" and not spec.mergeable:
        raise ConfigError(
            f"Method {spec.name!r} cannot be merged into a plain transformers model (peft "
            "cannot fold it into the weights): keep the adapter (petl.save / Learner.save)."
        )
    merge = getattr(backbone, "merge_and_unload", None)
    if merge is None:
        return backbone
    try:
        return merge()
    except ConfigError as err:  # bottleneck adapters are non-linear
        raise ConfigError(
            f"Cannot export method {learner.method!r} as a plain transformers model: {err} "
            "Use Learner.save (or petl.save) to keep the adapter."
        ) from None


def _spec(backbone: nn.Module) -> Any:
    """The registry entry of the peft method on `backbone`, if it is one."""
    from petl.methods import spec_of_peft_type

    config = getattr(backbone, "active_peft_config", None)
    peft_type = getattr(config, "peft_type", None)
    return spec_of_peft_type(getattr(peft_type, "value", "")) if peft_type else None


def _head(learner: Any, t: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Weight, bias and column names of the classification layer petl's heads amount to:
    task t's block (per-task heads) or every trained block (a growing head)."""
    heads = learner.model.heads
    if learner.per_task_heads:
        labels = list(learner.stream.tasks[t].labels)
        return heads.weights[t].detach(), heads.biases[t].detach(), labels
    n = max(heads.active, 1)
    blocks = learner.stream.block_labels()[:n]
    weight = torch.cat([heads.weights[i].detach() for i in range(n)])
    bias = torch.cat([heads.biases[i].detach() for i in range(n)])
    return weight, bias, [label for block in blocks for label in block]


def _write_head(model: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Puts a linear layer back wherever petl replaced the final layer by Identity (inside
    peft's modules_to_save wrapper too, so that merging sees an ordinary classifier)."""
    from petl.heads import FINAL_LAYERS

    found = False
    for name, module in list(model.named_modules()):
        dotted = f".{name}."
        if isinstance(module, nn.Identity) and any(f".{p}." in dotted for p in FINAL_LAYERS):
            layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
            with torch.no_grad():
                layer.weight.copy_(weight.cpu())
                layer.bias.copy_(bias.cpu())
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, layer)
            found = True
    if not found:
        raise ConfigError(f"{type(model).__name__}: found no replaced classification layer.")


def export(learner: Any, directory: str, task: int | str | None = None) -> nn.Module:
    """Writes a trained learner as a plain transformers model in `directory`.

    Load it without petl with `AutoModelForSequenceClassification.from_pretrained`
    (classification), `AutoModelForTokenClassification` (tokens) or
    `AutoModelForCausalLM` (generation; its prompts are in `petl_export.json`).

    Args:
        learner: A fitted (or loaded) `petl.Learner`.
        directory: Output folder.
        task: Which task to export where each task has its own head or adapter
            (task-incremental, TaskAdapters); None: the last task. A growing head exports
            every label learned so far.

    Returns:
        The exported model (on CPU).

    Raises:
        ConfigError: a method that cannot merge (bottleneck, prompt learning).
    """
    from petl.training.persist import _require_built, resolve_task

    _require_built(learner, "export")
    t = resolve_task(learner, task)
    restore = None
    store = next(
        (getattr(s, "_store", None) for s in learner.strategies if s.name == "task_adapters"), None
    )
    if store and t < len(store):
        # TaskAdapters keeps one adapter per task: export task t's (then put back the live one).
        own = dict(learner.model.named_parameters())
        restore = {n: own[n].detach().clone() for n in store[t]}
        with torch.no_grad():
            for n, v in store[t].items():
                own[n].copy_(v)
    heads = getattr(learner.model, "heads", None)
    head: tuple[torch.Tensor, torch.Tensor] | None = None
    labels: list[str] = []
    if heads is not None:
        weight, bias, labels = _head(learner, t)
        head = (weight, bias)
    try:
        model: Any = _merged_backbone(learner, head)
    finally:
        if restore is not None:
            with torch.no_grad():
                for n, v in restore.items():
                    dict(learner.model.named_parameters())[n].copy_(v)
    info: dict[str, Any] = {
        "family": learner.family.name,
        "scenario": learner.stream.scenario,
        "task": learner.stream.names[t],
    }
    if heads is not None:
        config = model.config
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        config.num_labels = len(labels)
        info["labels"] = labels
    else:
        info["template"] = getattr(learner.family, "template", None)
        info["instructions"] = {task.name: task.instruction for task in learner.stream.tasks}
    model.eval()
    os.makedirs(directory, exist_ok=True)
    from petl.quiet import quiet_petl_calls

    with quiet_petl_calls():  # no "Writing model shards" bar
        model.save_pretrained(directory)
        learner.tokenizer.save_pretrained(directory)
    with open(os.path.join(directory, EXPORT_INFO), "w") as f:
        json.dump(info, f, indent=2)
    return model

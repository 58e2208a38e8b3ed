"""Dynamic classification heads for continual learning.

`TaskHeads` holds one block of output rows per task. In "concat" mode (class- and
domain-incremental) the logits are the concatenation of every active block: the head
expands as tasks add classes and old rows are kept. In "route" mode (task-incremental)
each example is scored by the block of its own task. Blocks become active (and trainable)
when their task starts; an inactive block is never used for a prediction, except to score
a future task before it is trained (the random-head baseline of forward transfer)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from petl.errors import IncompatibleModelError

# The last linear layer of each transformers head, in the order they are tried.
FINAL_LAYERS = ("classifier.out_proj", "classification_head.out_proj", "classifier", "score")
# The top-level head modules those layers live in: what an adapter keeps trainable and saves.
HEAD_MODULES = tuple(dict.fromkeys(path.split(".")[0] for path in FINAL_LAYERS))


class TaskHeads(nn.Module):
    """Per-task blocks of a linear classifier over a shared feature vector."""

    def __init__(self, in_features: int, block_sizes: list[int], mode: str = "concat") -> None:
        super().__init__()
        self.mode = mode
        self.block_sizes = list(block_sizes)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        bound = 1 / math.sqrt(in_features)
        for size in block_sizes:
            w = torch.empty(size, in_features).uniform_(-bound, bound)
            self.weights.append(nn.Parameter(w, requires_grad=False))
            self.biases.append(nn.Parameter(torch.zeros(size), requires_grad=False))
        self.active = 0

    def activate(self, task_index: int, freeze_old: bool = False) -> None:
        """Makes blocks 0..task_index live and trainable; with `freeze_old`, only the block
        of `task_index` trains (earlier blocks still score, frozen)."""
        self.active = task_index + 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            trainable = i == task_index if freeze_old else i <= task_index
            w.requires_grad_(trainable)
            b.requires_grad_(trainable)

    def block(
        self, features: torch.Tensor, index: int, params: Mapping[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Block `index`'s logits; with `params` (a model's parameters by name, e.g. a
        snapshot) its weights from there when they are in it."""
        w, b = self.weights[index], self.biases[index]
        if params is not None:
            w = params.get(f"heads.weights.{index}", w)
            b = params.get(f"heads.biases.{index}", b)
        return features.to(w.dtype) @ w.T + b

    def forward(self, features: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "concat":
            blocks = [self.block(features, i) for i in range(max(self.active, 1))]
            return torch.cat(blocks, dim=-1)
        if task_ids is None:
            raise ValueError("Task-incremental heads need the task id of every example.")
        width = max(self.block_sizes)
        out = features.new_full(
            (*features.shape[:-1], width), float("-inf"), dtype=self.weights[0].dtype
        )
        for t in task_ids.unique().tolist():
            rows = task_ids == t
            out[rows, ..., : self.block_sizes[t]] = self.block(features[rows], t)  # per token too
        return out

    @property
    def per_task(self) -> bool:
        """The head layout: one block per task chosen by task id ("route"), or one growing
        label space ("concat")."""
        return self.mode == "route"

    def old_blocks(
        self, features: torch.Tensor, t: int, params: Mapping[str, torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """Logits of the blocks of tasks before t (those with classes): one tensor of the
        concatenated old classes ("concat"), or one per old task ("route"). `params`: as
        in `block`."""
        blocks = [self.block(features, k, params) for k in range(t) if self.block_sizes[k]]
        if self.mode == "concat":
            return [torch.cat(blocks, dim=-1)] if blocks else []
        return blocks

    def columns(self, blocks: range) -> list[int]:
        """Logit columns (in concat mode) that belong to the given blocks."""
        start = sum(self.block_sizes[: blocks.start])
        return list(range(start, start + sum(self.block_sizes[i] for i in blocks)))


def detach_final_layer(model: nn.Module) -> int:
    """Replaces the transformers head's last linear layer by Identity, so the model returns
    features where it returned logits; returns the feature size."""
    for path in FINAL_LAYERS:
        parent_path, _, name = path.rpartition(".")
        try:
            parent = model.get_submodule(parent_path) if parent_path else model
        except AttributeError:
            continue
        layer = getattr(parent, name, None)
        if isinstance(layer, nn.Linear):
            setattr(parent, name, nn.Identity())
            return layer.in_features
    raise IncompatibleModelError(
        f"{type(model).__name__} has no classification layer petl knows ({', '.join(FINAL_LAYERS)}). "
        "Load the model with AutoModelForSequenceClassification (or ...ForTokenClassification)."
    )


class ClassifierModel(nn.Module):
    """A (PEFT-adapted) transformers classifier whose last layer is `TaskHeads`."""

    def __init__(self, backbone: nn.Module, heads: TaskHeads) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = heads
        self.pooling = "head"  # petl.features: what the heads see; the family may set it

    def features(self, batch: dict[str, torch.Tensor], layers: Any = "last") -> torch.Tensor:
        """The feature vector the heads score: [B, H] (per token [B, L, H] for "head" on
        token classifiers), pooled as `self.pooling` says (see petl.features); with
        `layers` (statistic heads), [B, k, H] from the named hidden states."""
        from petl.features import backbone_features

        return backbone_features(self.backbone, batch, self.pooling, layers)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # Kept for strategies that read other heads' outputs (LwF) without a second pass.
        self.last_features = self.features(batch)
        return self.heads(self.last_features, batch.get("task_ids"))

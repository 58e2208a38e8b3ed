"""Sentence classification: one label per text (or text pair), scored by accuracy.

The backbone is a transformers `...ForSequenceClassification` model whose last linear layer
is replaced by petl's `TaskHeads` (an expanding head, or one head per task). The token
family reuses the same model construction (`build_head_model`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from petl.heads import ClassifierModel, TaskHeads, detach_final_layer
from petl.training.data import Encoded, collate, encode_split

if TYPE_CHECKING:
    from petl.stream import Task


def build_head_model(learner: Any, backbone: nn.Module) -> ClassifierModel:
    """Replaces the backbone's last linear layer by task heads sized from the stream's
    label space, applies the PEFT method, and sets `learner.per_task_heads`."""
    width = detach_final_layer(backbone)
    backbone = learner.apply_method(backbone)
    stream = learner.stream
    learner.per_task_heads = stream.scenario == "task" or learner.hooks.capability("per_task_heads")
    if learner.per_task_heads:
        sizes = [len(t.labels) for t in stream.tasks]
    else:
        sizes = [len(b) for b in stream.block_labels()]
    heads = TaskHeads(width, sizes, mode="route" if learner.per_task_heads else "concat")
    return ClassifierModel(backbone, heads)


def routed(rows: Sequence[Any], head: int | None) -> list[Any]:
    """Rows re-addressed to another task's head (per-task heads route by `row.task`)."""
    return list(rows) if head is None else [dataclasses.replace(r, task=head) for r in rows]


class ClassificationFamily:
    """One label per example; accuracy."""

    name = "classification"
    auto_class = "AutoModelForSequenceClassification"

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def metric(self, task: Task) -> str:
        return "accuracy"

    def build_model(self, learner: Any, backbone: nn.Module) -> nn.Module:
        from petl.features import freeze_unused_pooler, resolve_pooling

        pooling = resolve_pooling(learner.config.pooling, learner.source, backbone)
        model = build_head_model(learner, backbone)
        model.pooling = pooling
        freeze_unused_pooler(backbone, pooling)  # no gradient reaches it: not trainable
        return model

    def encode(self, learner: Any, t: int, examples: Sequence[Any]) -> list[Encoded]:
        return encode_split(
            learner.label_ids(t), t, examples, learner.tokenizer, learner.config.max_length
        )

    def collate(self, rows: Sequence[Any], pad_id: int) -> dict[str, torch.Tensor]:
        return collate(rows, pad_id)

    def loss(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], reduction: str = "mean"
    ) -> torch.Tensor:
        return F.cross_entropy(logits.float(), batch["labels"], reduction=reduction)

    def predict(
        self, learner: Any, t: int, rows: Sequence[Any], head: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        logits = learner.logits_for(routed(rows, head))
        conf, preds = torch.softmax(logits, dim=-1).max(-1)
        return preds.numpy(), conf.numpy()

    def score(self, learner: Any, t: int, split: str, preds: Any) -> float:
        labels = np.array([r.label for r in learner.rows(t, split)])
        return float((np.asarray(preds) == labels).mean()) if len(labels) else 0.0

    def details(self, learner: Any, t: int, split: str, preds: Any) -> dict[str, float]:
        from petl import metrics

        ids = learner.label_ids(t)
        labels = np.array([r.label for r in learner.rows(t, split)])
        names = {v: k for k, v in ids.items()}
        return metrics.per_class_accuracy(
            np.asarray(preds), labels, [names.get(i, str(i)) for i in range(max(ids.values()) + 1)]
        )

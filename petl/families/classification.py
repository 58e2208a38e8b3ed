"""Sentence classification: one label per text (or text pair), scored by accuracy.

The backbone is a transformers `...ForSequenceClassification` model whose last linear layer
is replaced by petl's `TaskHeads` (an expanding head, or one head per task). Everything
classification-specific lives here: records -> `Example`s, tokenization into `Encoded`
rows and their batches, predictions as label ids, LwF's stored teacher outputs. The token
family reuses the model construction (`build_head_model`) and the generation family the
label-record parsing (`parse_label_task`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from petl.errors import ConfigError, DataError
from petl.heads import ClassifierModel, TaskHeads, detach_final_layer
from petl.records import check_label_kinds, label_list, label_name, text_value
from petl.tasks import PAIR_KEYS, SPLITS, TEXT_KEYS, Example

if TYPE_CHECKING:
    from petl.families import DistillPairs
    from petl.tasks import Task


@dataclasses.dataclass
class Encoded:
    """One tokenized example with its label id and task index."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    label: int
    task: int


def to_example(record: Mapping[str, Any] | Example, where: str) -> Example:
    """A classification record (a text field, 'label', optionally a second text)."""
    if isinstance(record, Example):
        return record
    text_key = next((k for k in TEXT_KEYS if k in record), None)
    if text_key is None:
        raise DataError(
            f"{where}: record has no text field (one of {TEXT_KEYS}); keys: {sorted(record)}."
        )
    if "label" not in record or record["label"] is None:
        raise DataError(
            f"{where}: record has no 'label'. Every scenario of petl needs labelled examples."
        )
    pair_key = next((k for k in PAIR_KEYS if k in record), None)
    return Example(
        text_value(record[text_key], where, text_key),
        label_name(record["label"], where),  # the rule of petl.records: 1, 1.0, "1" -> "1"
        text_value(record[pair_key], where, pair_key) if pair_key else None,
    )


def parse_label_task(
    name: str,
    spec: Mapping[str, Any],
    convert: Callable[[Any, str], Example],
    seen_labels_only: bool,
) -> tuple[dict[str, list[Any]], list[str]]:
    """Examples (one label each, read by `convert`) per split and the label names: given
    ('labels') or the sorted names found. `seen_labels_only` refuses test labels that no
    training example has (a classifier cannot learn them)."""
    where = f"task {name!r}" + (f" ({spec['_source']})" if "_source" in spec else "")
    raw = [r for k in SPLITS for r in spec.get(k) or []]
    check_label_kinds((r.get("label") for r in raw if isinstance(r, Mapping)), where)
    splits = {
        k: [convert(r, f"{where} {k}[{i}]") for i, r in enumerate(spec.get(k) or [])]
        for k in SPLITS
    }
    given = spec.get("labels")
    labels = (
        sorted({e.label for s in splits.values() for e in s})
        if given is None or (isinstance(given, list | tuple) and not given)
        else label_list(given, f"{where} labels")
    )
    unseen = {e.label for e in splits["test"]} - {e.label for e in splits["train"]}
    if seen_labels_only and splits["train"] and unseen:
        raise DataError(
            f"{where}: test label(s) {sorted(unseen)[:5]} never occur in its training "
            "data, so no model can learn them. Add training examples of them or "
            "drop them from the test data."
        )
    return splits, labels


def text_examples(task: Task, inputs: Sequence[Any]) -> list[Example]:
    """Texts or (text, text_pair) pairs as examples of `task` with a placeholder label."""
    placeholder = task.labels[0] if task.labels else ""
    out = []
    for x in inputs:
        if isinstance(x, str):
            out.append(Example(x, placeholder))
        elif isinstance(x, Sequence) and len(x) == 2:
            out.append(Example(str(x[0]), placeholder, str(x[1])))
        else:
            raise ConfigError(
                f"predict() takes texts or (text, text_pair) pairs, got {type(x).__name__}."
            )
    return out


def encode_split(
    label_ids: dict[str, int],
    task_index: int,
    examples: Sequence[Example],
    tokenizer: Any,
    max_length: int,
) -> list[Encoded]:
    if not examples:  # e.g. no validation split; tokenizers fail on an empty list
        return []
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = any(p is not None for p in pairs)
    enc = tokenizer(
        texts,
        [p or "" for p in pairs] if has_pairs else None,
        truncation=True,
        max_length=max_length,
    )
    types = enc.get("token_type_ids")
    return [
        Encoded(
            enc["input_ids"][i],
            types[i] if types is not None else None,
            label_ids[e.label],
            task_index,
        )
        for i, e in enumerate(examples)
    ]


def collate(rows: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if rows[0].token_type_ids is not None:
        batch["token_type_ids"] = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        ids[i, :n] = torch.tensor(row.input_ids)
        mask[i, :n] = 1
        if row.token_type_ids is not None:
            batch["token_type_ids"][i, :n] = torch.tensor(row.token_type_ids)
    batch["labels"] = torch.tensor([r.label for r in rows])
    batch["task_ids"] = torch.tensor([r.task for r in rows])
    return batch


INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class ClassifierView(nn.Module):
    """A transformers classifier (sequence or token) called as petl calls its models:
    `forward(batch) -> logits`. It holds the user's model, so parameter names gain a
    `backbone.` prefix, the same for every strategy (EWC's Fisher, LwF's snapshot)."""

    heads = None  # no petl task heads: the user's own classifier is the output layer

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.backbone(**{k: v for k, v in batch.items() if k in INPUT_KEYS}).logits


def wrap_classifier(learner: Any, model: nn.Module) -> ClassifierView:
    """A user's transformers classifier (its own output layer, whose columns are the
    stream's label space) as petl calls it; refuses one with too few labels."""
    stream = learner.stream
    needed = max(max(stream.label_ids(t).values()) for t in range(len(stream))) + 1
    have = getattr(getattr(model, "config", None), "num_labels", None)
    if have is not None and have < needed:
        raise ConfigError(
            f"The model has {have} output labels but the stream's label space has {needed} "
            f"({stream.scenario}-incremental): load it with num_labels={needed}."
        )
    return ClassifierView(model)


def build_head_model(learner: Any, backbone: nn.Module) -> ClassifierModel:
    """Replaces the backbone's last linear layer by task heads sized from the stream's
    label space and applies the PEFT method. The layout (one head per task under
    task-incremental streams or a strategy asking for it) is the heads'."""
    width = detach_final_layer(backbone)
    backbone = learner.apply_method(backbone)
    stream = learner.stream
    per_task = stream.scenario == "task" or learner.hooks.capability("per_task_heads")
    if per_task:
        sizes = [len(t.labels) for t in stream.tasks]
    else:
        sizes = [len(b) for b in stream.block_labels()]
    heads = TaskHeads(width, sizes, mode="route" if per_task else "concat")
    return ClassifierModel(backbone, heads)


def routed(rows: Sequence[Any], head: int | None) -> list[Any]:
    """Rows re-addressed to another task's head (per-task heads route by `row.task`)."""
    return list(rows) if head is None else [dataclasses.replace(r, task=head) for r in rows]


def column_names(learner: Any, head: int) -> list[str]:
    """Label name of each logit column: the task's own labels with per-task heads, else
    the stream's growing label space."""
    if learner.per_task_heads:
        return list(learner.stream.tasks[head].labels)
    return [label for block in learner.stream.block_labels() for label in block]


def rescaled(conf: np.ndarray, size: int) -> np.ndarray:
    """Top softmax probability rescaled by the head's size K, (p - 1/K) / (1 - 1/K), so a
    2-class head (never below 0.5) competes fairly with a 10-class one."""
    conf = np.asarray(conf, dtype=np.float64)
    return (conf - 1 / size) / (1 - 1 / size) if size > 1 else np.ones_like(conf)


class ClassificationFamily:
    """One label per example; accuracy."""

    name = "classification"
    auto_class = "AutoModelForSequenceClassification"
    # The checkpoint's own classifier (of any size, e.g. a 9-tag NER model) is replaced by
    # petl's task heads, so a size mismatch there is expected.
    auto_kwargs: Mapping[str, Any] = {"num_labels": 2, "ignore_mismatched_sizes": True}
    label_per_row = True

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def saved_config(self, learner: Any) -> dict[str, Any]:
        return self.config()

    def parse_task(
        self, name: str, spec: Mapping[str, Any]
    ) -> tuple[dict[str, list[Any]], list[str]]:
        return parse_label_task(name, spec, to_example, seen_labels_only=True)

    def file_records(
        self,
        files: Mapping[str, Any],
        *,
        text_column: str | None = None,
        label_column: str | None = None,
        instructions: Mapping[str, str] | None = None,
        types: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Tables (json, jsonl, csv, tsv, parquet) read through `datasets`."""
        from petl.sources import file_records

        return file_records(files, text_column, label_column or "label")

    def folder_spec(
        self, name: str, spec: dict[str, Any], instruction: str | None
    ) -> dict[str, Any]:
        return spec

    def input_examples(self, task: Task, inputs: Sequence[Any]) -> list[Any]:
        return text_examples(task, inputs)

    def metric(self, task: Task) -> str:
        return "accuracy"

    def build_model(self, learner: Any, backbone: nn.Module) -> nn.Module:
        from petl.features import freeze_unused_pooler, resolve_pooling

        pooling = resolve_pooling(learner.config.pooling, learner.source, backbone)
        model = build_head_model(learner, backbone)
        model.pooling = pooling
        freeze_unused_pooler(backbone, pooling)  # no gradient reaches it: not trainable
        return model

    def wrap_model(self, learner: Any, model: nn.Module) -> nn.Module:
        return wrap_classifier(learner, model)

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
        """Label ids (columns of the head used) and the top probability rescaled by the
        head's size (`rescaled`)."""
        logits = learner.logits_for(routed(rows, head))
        conf, preds = torch.softmax(logits, dim=-1).max(-1)
        return preds.numpy(), rescaled(conf.numpy(), self._head_size(learner, t, head, logits))

    @staticmethod
    def _head_size(learner: Any, t: int, head: int | None, logits: torch.Tensor) -> int:
        if learner.per_task_heads:  # route mode pads other heads' columns with -inf
            return len(learner.stream.tasks[t if head is None else head].labels)
        return int(logits.shape[-1])

    def as_predictions(self, preds: Any) -> Any:
        return np.asarray(preds)

    def answers(self, learner: Any, t: int, preds: Any) -> list[Any]:
        # A strategy's own rule may answer with a column outside task t (-1): None.
        names = column_names(learner, t)
        return [names[int(i)] if 0 <= int(i) < len(names) else None for i in preds]

    def in_task(self, learner: Any, t: int, answers: list[Any]) -> Any:
        target = {label: i for i, label in enumerate(learner.stream.tasks[t].labels)}
        return np.array([target.get(a, -1) for a in answers], dtype=np.int64)

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

    @torch.no_grad()
    def distill_targets(self, learner: Any, rows: Sequence[Any], t: int) -> torch.Tensor | None:
        """The old tasks' head outputs on `rows` (one column block per old task)."""
        model = learner.model
        model.eval()
        outs = []
        for batch in learner.batches(rows):
            blocks = model.heads.old_blocks(model.features(batch), t)
            outs.append(torch.cat(blocks, dim=-1).float().cpu())
        model.train()
        return torch.cat(outs) if outs and outs[0].numel() else None

    def distill_pairs(
        self,
        learner: Any,
        batch: dict[str, torch.Tensor],
        logits: torch.Tensor,
        t: int,
        teacher: torch.Tensor | dict[str, torch.Tensor],
    ) -> DistillPairs:
        assert isinstance(teacher, torch.Tensor)  # distill_targets' rows for this batch
        model = learner.model
        student = model.heads.old_blocks(model.last_features, t)
        pairs, start = [], 0
        for block in student:
            width = block.shape[-1]
            pairs.append((block, teacher[:, start : start + width]))
            start += width
        return pairs

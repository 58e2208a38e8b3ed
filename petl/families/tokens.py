"""Token classification (NER) with BIO tags, class-incremental over entity types.

A task annotates some entity types; its labels are its BIO tags ("O", then "B-X", "I-X"
for each type X). In a class-incremental stream later tasks add types, the head grows by
their B-/I- rows, and earlier types' tags in later tasks' data are "O" (each task's data
is annotated only with its own types, the standard CIL-NER protocol).

Sub-words: the first sub-token of each word carries the word's tag, the others (and
special tokens) carry -100 and are ignored by the loss; a word's prediction is its first
sub-token's. This needs a fast tokenizer (`word_ids`).

Score of task t: entity-level micro F1 (seqeval, conlleval semantics) over task t's own
types. Predicted tags of other types count as "O" for it, words cut off by `max_length`
are predicted "O". Per-type F1 goes into `Results.per_class`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from petl.errors import ConfigError
from petl.families.classification import build_head_model, routed, wrap_classifier
from petl.families.shares import sharded_predict
from petl.families.token_records import (
    TAG_KEYS,
    TOKEN_KEYS,
    bio_labels,
    entity_type,
    keep_types,
    read_token_file,
    token_example,
    token_splits,
)
from petl.tasks import TokenExample

if TYPE_CHECKING:
    from petl.families import DistillPairs
    from petl.tasks import Task

IGNORE = -100
# the record side lives in petl.families.token_records; its names stay importable here
__all__ = [
    "IGNORE",
    "TAG_KEYS",
    "TOKEN_KEYS",
    "TokenFamily",
    "TokenRow",
    "bio_labels",
    "collate_tokens",
    "encode_tokens",
    "entity_type",
    "f1_report",
    "keep_types",
    "masked_cross_entropy",
    "read_token_file",
    "token_example",
    "token_splits",
]


@dataclass
class TokenRow:
    """A tokenized sentence: per-token label ids (-100 off first sub-tokens), the word of
    each labelled position, its task, and `label`: the sentence's first entity tag id (0
    when it has none), which class-balanced replay groups by."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    labels: list[int]
    words: list[int]
    n_words: int
    task: int
    label: int


def align_labels(
    word_ids: Sequence[int | None], tags: Sequence[str], label_ids: Mapping[str, int]
) -> tuple[list[int], list[int]]:
    """Label id of each sub-token: the word's tag on its first sub-token, -100 elsewhere;
    and the word index of each labelled position."""
    labels, words, previous = [], [], None
    for w in word_ids:
        if w is None or w == previous:
            labels.append(IGNORE)
        else:
            labels.append(label_ids[tags[w]])
            words.append(w)
        previous = w
    return labels, words


def encode_tokens(
    label_ids: Mapping[str, int],
    task: int,
    examples: Sequence[TokenExample],
    tokenizer: Any,
    max_length: int,
) -> list[TokenRow]:
    if not examples:
        return []
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            "Token classification needs a fast tokenizer (with word_ids) to align tags with "
            "sub-words; load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )
    enc = tokenizer(
        [list(e.tokens) for e in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    types = enc.get("token_type_ids")
    rows = []
    for i, e in enumerate(examples):
        labels, words = align_labels(enc.word_ids(i), e.tags, label_ids)
        first = next((label_ids[t] for t in e.tags if t != "O"), 0)
        rows.append(
            TokenRow(
                enc["input_ids"][i],
                types[i] if types is not None else None,
                labels,
                words,
                len(e.tokens),
                task,
                first,
            )
        )
    return rows


def collate_tokens(rows: Sequence[Any], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch of token-level rows (tagging or LM): labels -100 on padding."""
    width = max(len(r.input_ids) for r in rows)
    n = len(rows)
    batch = {
        "input_ids": torch.full((n, width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((n, width), dtype=torch.long),
        "labels": torch.full((n, width), IGNORE, dtype=torch.long),
    }
    if getattr(rows[0], "token_type_ids", None) is not None:
        batch["token_type_ids"] = torch.zeros((n, width), dtype=torch.long)
    for i, row in enumerate(rows):
        k = len(row.input_ids)
        batch["input_ids"][i, :k] = torch.tensor(row.input_ids)
        batch["attention_mask"][i, :k] = 1
        batch["labels"][i, :k] = torch.tensor(row.labels)
        if getattr(row, "token_type_ids", None) is not None:
            batch["token_type_ids"][i, :k] = torch.tensor(row.token_type_ids)
    batch["task_ids"] = torch.tensor([r.task for r in rows])
    return batch


def masked_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy over positions whose label is not -100: the mean over all of them, or
    ("sum") the sum over sequences of each sequence's mean."""
    if reduction == "mean":
        return F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=IGNORE)
    per = F.cross_entropy(
        logits.float().transpose(1, -1), labels, ignore_index=IGNORE, reduction="none"
    )  # (B, L)
    mask = labels != IGNORE
    return ((per * mask).sum(-1) / mask.sum(-1).clamp(min=1)).sum()


def column_names(learner: Any, head: int) -> list[str]:
    """Tag name of each logit column: the task's own tags with per-task heads, else the
    stream's growing tag space."""
    if learner.per_task_heads:
        return list(learner.stream.tasks[head].labels)
    return [label for block in learner.stream.block_labels() for label in block]


def f1_report(
    gold: list[list[str]], pred: list[list[str]], types: Sequence[str]
) -> tuple[float, dict[str, float]]:
    """Entity-level micro F1 (seqeval) and per-type F1 over `types`."""
    from seqeval.metrics import classification_report, f1_score

    if not any(entity_type(t) for seq in gold for t in seq):  # nothing to find
        return (1.0 if not any(entity_type(t) for seq in pred for t in seq) else 0.0), {}
    micro = float(f1_score(gold, pred, average="micro", zero_division=0))
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    return micro, {t: float(report[t]["f1-score"]) for t in types if t in report}


class TokenFamily:
    """BIO tagging with task heads over `...ForTokenClassification`; entity-level F1."""

    name = "tokens"
    auto_class = "AutoModelForTokenClassification"
    # The checkpoint's own classifier (of any size, e.g. a 9-tag NER model) is replaced by
    # petl's task heads, so a size mismatch there is expected.
    auto_kwargs: Mapping[str, Any] = {"num_labels": 2, "ignore_mismatched_sizes": True}
    label_per_row = False  # one tag per word

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def saved_config(self, learner: Any) -> dict[str, Any]:
        return self.config()

    def parse_task(
        self, name: str, spec: Mapping[str, Any]
    ) -> tuple[dict[str, list[Any]], list[str]]:
        return token_splits(name, spec)

    def file_records(
        self,
        files: Mapping[str, Any],
        *,
        text_column: str | None = None,
        label_column: str | None = None,
        instructions: Mapping[str, str] | None = None,
        types: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """CoNLL column files or JSON lines of `{tokens, tags}`; `types` lists the entity
        types a task annotates (other types' tags become "O")."""
        records: dict[str, dict[str, Any]] = {}
        for name, paths in files.items():
            split_paths = {"train": paths} if isinstance(paths, str) else dict(paths)
            records[name] = {split: read_token_file(path) for split, path in split_paths.items()}
            if types and name in types:
                records[name]["types"] = list(types[name])
        return records

    def folder_spec(
        self, name: str, spec: dict[str, Any], instruction: str | None
    ) -> dict[str, Any]:
        return spec

    def input_examples(self, task: Task, inputs: Sequence[Any]) -> list[Any]:
        """Word lists or whitespace-separated sentences, every word tagged "O"."""
        out = []
        for x in inputs:
            words = tuple(x.split()) if isinstance(x, str) else tuple(str(w) for w in x)
            if not words:
                raise ConfigError("predict() got an empty sentence.")
            out.append(TokenExample(words, ("O",) * len(words)))
        return out

    def as_predictions(self, preds: Any) -> Any:
        return preds

    def answers(self, learner: Any, t: int, preds: Any) -> list[Any]:
        return list(preds)

    def in_task(self, learner: Any, t: int, answers: list[Any]) -> Any:
        return answers

    def distill_targets(self, learner: Any, rows: Sequence[Any], t: int) -> torch.Tensor | None:
        return None  # per-token outputs of every row would not fit: distil from a snapshot

    def distill_pairs(
        self,
        learner: Any,
        batch: dict[str, torch.Tensor],
        logits: torch.Tensor,
        t: int,
        teacher: torch.Tensor | dict[str, torch.Tensor],
    ) -> DistillPairs:
        """Old tasks' head blocks on every labelled word, now and under the parameters
        `teacher` had before task t (heads included)."""
        assert isinstance(teacher, dict)
        model = learner.model
        labelled = batch["labels"] != IGNORE
        features = model.last_features
        student = [b[labelled] for b in model.heads.old_blocks(features, t)]
        with torch.no_grad():
            was = model.training
            model.eval()
            torch.func.functional_call(model, teacher, (batch,))
            old = model.last_features
            model.train(was)
            model.last_features = features
            blocks = model.heads.old_blocks(old, t, teacher)
        return list(zip(student, [b[labelled] for b in blocks], strict=True))

    def metric(self, task: Task) -> str:
        return "f1"

    def build_model(self, learner: Any, backbone: nn.Module) -> nn.Module:
        return build_head_model(learner, backbone)

    def wrap_model(self, learner: Any, model: nn.Module) -> nn.Module:
        return wrap_classifier(learner, model)

    def encode(self, learner: Any, t: int, examples: Sequence[Any]) -> list[TokenRow]:
        return encode_tokens(
            learner.label_ids(t), t, examples, learner.tokenizer, learner.config.max_length
        )

    def collate(self, rows: Sequence[Any], pad_id: int) -> dict[str, torch.Tensor]:
        return collate_tokens(rows, pad_id)

    def loss(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], reduction: str = "mean"
    ) -> torch.Tensor:
        return masked_cross_entropy(logits, batch["labels"], reduction)

    @torch.no_grad()
    def predict(
        self, learner: Any, t: int, rows: Sequence[Any], head: int | None = None
    ) -> tuple[list[list[str]], np.ndarray]:
        """Word-level tags of each row (tag names of the head used) and the mean over its
        words of the top tag probability (each process tags its share of the rows)."""
        return sharded_predict(learner, routed(rows, head), lambda s: self._predict(learner, s))

    def _predict(self, learner: Any, rows: Sequence[Any]) -> tuple[list[list[str]], list[float]]:
        model, was_training = learner.model, learner.model.training
        model.eval()
        preds: list[list[str]] = []
        conf: list[float] = []
        for batch in learner.batches(rows):
            probs = torch.softmax(model(batch).float(), dim=-1).cpu()
            top, ids = probs.max(-1)
            labelled = batch["labels"].cpu() != IGNORE
            for i, pos in enumerate(batch["positions"].tolist()):
                row = rows[pos]
                names = column_names(learner, row.task)
                tags = ["O"] * row.n_words
                for w, c in zip(row.words, ids[i][labelled[i]].tolist(), strict=True):
                    tags[w] = names[c] if c < len(names) else "O"
                preds.append(tags)
                conf.append(float(top[i][labelled[i]].mean()) if labelled[i].any() else 0.0)
        model.train(was_training)
        return preds, conf

    def score(self, learner: Any, t: int, split: str, preds: Any) -> float:
        return self._report(learner, t, split, preds)[0]

    def details(self, learner: Any, t: int, split: str, preds: Any) -> dict[str, float]:
        return self._report(learner, t, split, preds)[1]

    def _report(
        self, learner: Any, t: int, split: str, preds: Any
    ) -> tuple[float, dict[str, float]]:
        task = learner.stream.tasks[t]
        types = [x for x in dict.fromkeys(entity_type(label) for label in task.labels) if x]
        own = set(types)
        gold = [list(e.tags) for e in getattr(task, split)]
        pred = [[tag if entity_type(tag) in own else "O" for tag in seq] for seq in preds]
        return f1_report(gold, pred, types)

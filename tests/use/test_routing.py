"""Learner.predict with per-task heads: without task= every input is answered by the most
confident task (never None), with task= by that task only (petl.training.routing)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

import petl
from tests.cl.cl_data import CLASS_TOKENS, SPECIALS, WORDS, make_bert, make_tokenizer, split_records

GROUPS = [[0, 1], [2, 3]]  # task 0: classes L0, L1; task 1: L2, L3


class ZeroBag(nn.Module):
    """Mean of token embeddings -> classifier, embeddings starting at zero, no bias before
    the head. Trained per task from this start (TaskAdapters, full fine-tuning), a task's
    model keeps exactly zero embeddings for the other task's tokens (they get no gradient),
    so it sees an all-zero feature for the other task's texts: its answer there is its
    head's bias alone, near uniform, while the task that owns the tokens is sure. Which task
    should answer is then unambiguous by construction."""

    def __init__(self, seed: int = 0, hidden: int = 16) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(len(SPECIALS) + len(WORDS), hidden)
        nn.init.zeros_(self.embed.weight)
        self.classifier = nn.Linear(hidden, 2)

    def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return SimpleNamespace(logits=self.classifier(pooled))


def own_texts(n_per_class: int, seed: int) -> tuple[list[str], list[str]]:
    """Texts made only of one class's tokens, and that class's label."""
    rng = random.Random(seed)
    texts, labels = [], []
    for c in [c for group in GROUPS for c in group]:
        for _ in range(n_per_class):
            texts.append(" ".join(f"c{c}_{rng.randrange(CLASS_TOKENS)}" for _ in range(4)))
            labels.append(f"L{c}")
    return texts, labels


def fit(model: nn.Module, method: Any, scenario: str, strategies: list[Any], **cfg: Any) -> Any:
    stream = petl.Stream.from_records(split_records(GROUPS, n_train=32, n_test=8), scenario)
    config = petl.TrainConfig(**{"batch_size": 16, "progress": False, **cfg})
    learner = petl.Learner(
        model, make_tokenizer(), method=method, strategies=strategies, config=config
    )
    learner.fit(stream)
    return learner


def test_task_adapters_route_each_text_to_the_task_that_owns_it() -> None:
    learner = fit(ZeroBag(), None, "class", [petl.TaskAdapters()], epochs=5, lr=5e-2)
    texts, labels = own_texts(4, seed=1)
    answers = learner.predict(texts)
    # the two tasks' labels are disjoint, so an answer names the task that gave it
    routed_to = [0 if answer in ("L0", "L1") else 1 for answer in answers]
    assert routed_to == [0 if label in ("L0", "L1") else 1 for label in labels]
    assert answers == labels  # and each task learned its own classes
    # task= asks one task: its labels only, whoever owns the text
    assert set(learner.predict(texts, task=0)) <= {"L0", "L1"}
    assert set(learner.predict(texts, task="t1")) <= {"L2", "L3"}
    assert learner.predict(texts[:4], task=0) == labels[:4]


def test_no_prediction_is_none_and_routing_agrees_with_the_evaluation_rule() -> None:
    """A tiny BERT with LoRA adapters per task, class-incremental: every text gets a label;
    where TaskAdapters' own (evaluation) rule picks a label of the scored task, predict()
    answers that label, and where it picks another task's, predict() answers from that
    other task (the evaluation counts it wrong; predict() no longer says None)."""
    learner = fit(make_bert(), "lora", "class", [petl.TaskAdapters()], epochs=3, lr=2e-2)
    for t, task in enumerate(learner.stream.tasks):
        texts = [e.text for e in task.test]
        answers = learner.predict(texts)
        assert None not in answers
        assert set(answers) <= {"L0", "L1", "L2", "L3"}
        evaluated = learner.predictions(t, "test")  # ids in task t's labels, -1: another task
        for answer, pred in zip(answers, evaluated, strict=True):
            if pred >= 0:
                assert answer == task.labels[pred]
            else:
                assert answer not in task.labels


def test_task_incremental_heads_route_without_a_task_id() -> None:
    """Per-task heads on one shared backbone (Naive, task-incremental): task= gives what the
    evaluation scores; without it each text still gets a label."""
    learner = fit(make_bert(), "lora", "task", [petl.Naive()], epochs=2, lr=2e-2)
    texts, _ = own_texts(2, seed=2)
    answers = learner.predict(texts)
    assert None not in answers and set(answers) <= {"L0", "L1", "L2", "L3"}
    for t, task in enumerate(learner.stream.tasks):
        ids = learner.predictions(t, "test")
        assert learner.predict(task=t) == [task.labels[int(i)] for i in ids]

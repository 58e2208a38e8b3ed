"""TaskAdapters: routing by task id, and the confidence rule used without task ids (each
adapter scores an example with its own head; the most confident adapter answers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

import petl
from petl.families.classification import ClassificationFamily, Encoded

# Probabilities each adapter's own head gives the 3 test examples of task 0 (labels 0, 1, 1).
PROBS = {
    0: [[0.90, 0.10], [0.60, 0.40], [0.20, 0.80]],
    1: [[0.70, 0.30], [0.05, 0.95], [0.50, 0.50]],
    2: [[0.50, 0.50], [0.50, 0.50], [0.10, 0.90]],  # the adapter being trained (task 2)
}
CLASS_LABELS = [["a", "b"], ["b", "c"], ["d", "e"]]


class OneParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.which = nn.Parameter(torch.zeros(()))  # stands in for an adapter's weights


def fake_learner(
    scenario: str,
    task_index: int,
    labels: list[list[str]] | None = None,
    probs: dict[int, list[list[float]]] | None = None,
) -> Any:
    labels = labels or (CLASS_LABELS if scenario == "class" else [["a", "b"]] * 3)
    probs = probs or PROBS
    recs = {
        f"t{k}": {
            "train": [{"text": "x", "label": lb} for lb in ls],
            "test": [{"text": "x", "label": lb} for lb in ls],
        }
        for k, ls in enumerate(labels)
    }
    stream = petl.Stream.from_records(recs, scenario=scenario, val_fraction=0)
    model = OneParam()
    rows = [Encoded([2, 3], None, y, 0) for y in (0, 1, 1)]

    def logits_for(batch: list[Any]) -> torch.Tensor:
        adapter = int(model.which.item())
        # task ids route to the task's own adapter and head; the rule uses each adapter's own
        assert {r.task for r in batch} == ({0} if scenario == "task" else {adapter})
        return torch.tensor(probs[adapter]).log()

    return SimpleNamespace(
        model=model,
        stream=stream,
        task_index=task_index,
        rows=lambda t, split: rows,
        trainable_parameters=lambda: {"which": model.which},
        logits_for=logits_for,
        family=ClassificationFamily(),
        per_task_heads=True,  # TaskAdapters' capability: each task its own head
    )


def adapters(learner: Any, stored: int) -> petl.TaskAdapters:
    strategy = petl.TaskAdapters()
    strategy._store = [{"which": torch.tensor(float(k))} for k in range(stored)]
    with torch.no_grad():
        learner.model.which.fill_(float(stored))  # the current adapter
    return strategy


def test_confidence_rule_class_incremental() -> None:
    learner = fake_learner("class", task_index=1)
    preds = adapters(learner, stored=2).predict(learner, 0, "test")
    # example 0: adapter 0 (0.90) says "a" -> 0; example 1: adapter 1 (0.95) says "c", which
    # is not a label of task 0 -> -1 (wrong); example 2: adapter 0 (0.80) says "b" -> 1.
    assert preds.tolist() == [0, -1, 1]
    assert learner.model.which.item() == 2.0  # the current adapter is back in place


def test_confidence_rule_maps_shared_labels() -> None:
    probs = {**PROBS, 1: [[0.70, 0.30], [0.97, 0.03], [0.50, 0.50]]}  # adapter 1 says "b"
    learner = fake_learner("class", task_index=1, probs=probs)
    assert adapters(learner, stored=2).predict(learner, 0, "test").tolist() == [0, 1, 1]


def test_confidence_is_rescaled_by_head_size() -> None:
    # Adapter 1 has 4 classes: p_max 0.5 is (0.5 - 1/4) / (3/4) = 0.33 confident, more than
    # adapter 0's 2-class 0.6 ((0.6 - 1/2) / (1/2) = 0.2), although 0.5 < 0.6.
    labels = [["a", "b"], ["b", "c", "d", "e"]]
    probs = {0: [[0.6, 0.4]] * 3, 1: [[0.5, 0.2, 0.2, 0.1]] * 3}
    learner = fake_learner("class", task_index=1, labels=labels, probs=probs)
    assert adapters(learner, stored=2).predict(learner, 0, "test").tolist() == [1, 1, 1]


def test_adapter_in_training_takes_part_in_validation() -> None:
    learner = fake_learner("class", task_index=2)  # task 2 training, 2 adapters stored
    # example 2: the current adapter (0.90 for "e") outbids adapter 0 -> -1 for task 0
    assert adapters(learner, stored=2).predict(learner, 0, "val").tolist() == [0, -1, -1]


def test_task_ids_route_to_the_task_adapter() -> None:
    learner = fake_learner("task", task_index=1)
    assert adapters(learner, stored=2).predict(learner, 0, "test").tolist() == [0, 0, 1]

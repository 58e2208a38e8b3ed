"""`Learner.predict` with per-task heads (task-incremental streams, TaskAdapters): which
task's head (and adapter) answers each input.

With `task=` given, that task's head answers (under TaskAdapters, with that task's stored
adapter in place), so the answer is always one of its labels. Without `task=`, every task
trained so far answers every input and the most confident task's answer is returned, with
that task's label names. Confidence is the family's own measure, as TaskAdapters' routing
rule uses it: for classification the top softmax probability rescaled by the head's size
K, (p_max - 1/K) / (1 - 1/K) (so a 2-class head, whose p_max is never below 0.5, competes
fairly with a 10-class one); for token tasks the mean over a sentence's words of the top
tag probability. Ties go to the earlier task. A strategy with a task router
(`TaskAdapters(route="prototype")`: `route_tasks(learner, rows)`) picks the task instead.

Evaluation (the accuracy matrix) does not come here: it keeps each strategy's own rule."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np


def applies(learner: Any) -> bool:
    """Whether predictions route over per-task heads here: per-task heads, a family with
    heads, and no strategy with its own prediction rule other than per-task parameters
    (NCM's prototypes, iCaRL's exemplar means, ... keep their rule)."""
    from petl.strategies.protocol import _overrides

    if not learner.per_task_heads:  # only families with task heads have per-task heads
        return False
    return all(
        hasattr(s, "task_parameters") or not _overrides(s, "predict") for s in learner.strategies
    )


def _task_parameters(learner: Any, k: int) -> contextlib.AbstractContextManager[Any]:
    """Task k's own parameters in the model for the duration (TaskAdapters' stored adapter),
    or nothing to change when the model is shared by every task."""
    stack = contextlib.ExitStack()
    for s in learner.strategies:
        if hasattr(s, "task_parameters"):
            stack.enter_context(s.task_parameters(learner, k))
    return stack


def _answers(learner: Any, k: int, rows: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """Task k's answers (label names, or tag lists) for its rows, and their confidence."""
    with _task_parameters(learner, k):
        preds, conf = learner.family.predict(learner, k, rows)
    return learner.family.answers(learner, k, preds), np.asarray(conf, dtype=np.float64)


def predict(learner: Any, rows_of: Any, task: int | None, trained: int) -> list[Any]:
    """Answers for one batch of inputs (label names, or tag lists for token tasks).

    Args:
        learner: A trained learner for which `applies(learner)`.
        rows_of: `rows_of(k)`: the inputs encoded as rows of task k.
        task: The task to ask; None: route over tasks 0..trained.
        trained: The last task trained.
    """
    if task is None:
        routed = _routed(learner, rows_of)
        if routed is not None:
            return routed
    candidates = [task] if task is not None else list(range(trained + 1))
    best, best_conf = _answers(learner, candidates[0], rows_of(candidates[0]))
    for k in candidates[1:]:
        preds, conf = _answers(learner, k, rows_of(k))
        for i in np.flatnonzero(conf > best_conf):  # strictly: ties stay with the earlier
            best[i], best_conf[i] = preds[i], conf[i]
    return best


def _routed(learner: Any, rows_of: Any) -> list[Any] | None:
    """Answers through a strategy's task router, or None when no strategy routes."""
    for s in learner.strategies:
        tasks = s.route_tasks(learner, rows_of(0)) if hasattr(s, "route_tasks") else None
        if tasks is None:
            continue
        best: list[Any] = [None] * len(tasks)
        for k in np.unique(tasks):
            idx = np.flatnonzero(tasks == k)
            rows = rows_of(int(k))
            preds, _ = _answers(learner, int(k), [rows[i] for i in idx])
            for i, answer in zip(idx, preds, strict=True):
                best[i] = answer
        return best
    return None

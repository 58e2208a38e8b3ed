"""Replay: reservoir storage keeps every example seen with the same probability (a seeded
statistical test), class-balanced storage keeps per-class quotas, and the mix ratio."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from scipy import stats

import petl
from petl.errors import ConfigError
from petl.strategies.replay import balanced_quotas

TASK_SIZES = [400, 300, 200, 100]  # 1000 examples offered over 4 tasks
MEMORY = 100


def fake_learner(labels_per_task: list[list[int]], scenario: str = "class") -> Any:
    rows = [[SimpleNamespace(label=y) for y in labels] for labels in labels_per_task]
    return SimpleNamespace(
        rows=lambda t, split="train": rows[t], stream=SimpleNamespace(scenario=scenario)
    )


def run(
    strategy: petl.Replay, labels_per_task: list[list[int]], scenario: str = "class"
) -> petl.Replay:
    learner = fake_learner(labels_per_task, scenario)
    for t in range(len(labels_per_task)):
        strategy.after_task(learner, t)
    return strategy


def inclusion_counts(seeds: int, policy_fn: Any = None) -> np.ndarray:
    offsets = np.cumsum([0, *TASK_SIZES])
    counts = np.zeros(offsets[-1])
    labels = [[0] * n for n in TASK_SIZES]
    for seed in range(seeds):
        buffer = (policy_fn or (lambda s: run(petl.Replay(memory=MEMORY, seed=s), labels).buffer))(
            seed
        )
        assert len(buffer) == MEMORY and len(set(buffer)) == MEMORY
        for t, i in buffer:
            counts[offsets[t] + i] += 1
    return counts


def test_reservoir_keeps_every_example_with_equal_probability() -> None:
    seeds = 300
    counts = inclusion_counts(seeds)
    n = len(counts)
    # Each of the 1000 examples is kept with probability memory / N = 0.1 ...
    assert counts.mean() == pytest.approx(seeds * MEMORY / n)
    # ... per example (chi-square goodness of fit over the 1000 inclusion counts) ...
    assert stats.chisquare(counts).pvalue > 1e-3
    # ... and per task: the buffer's share of each task is its share of the stream.
    per_task = np.add.reduceat(counts, np.cumsum([0, *TASK_SIZES[:-1]]))
    expected = np.array(TASK_SIZES) / n * seeds * MEMORY
    assert stats.chisquare(per_task, expected).pvalue > 1e-3
    assert np.allclose(per_task / expected, 1, atol=0.05)


def test_the_uniformity_test_detects_a_biased_buffer() -> None:
    # Power check: a buffer that favours recent examples (the classic bug of keeping the
    # newest ones with probability 1) fails the same statistic.
    offsets = np.cumsum([0, *TASK_SIZES])

    def recent_biased(seed: int) -> list[tuple[int, int]]:
        rng = np.random.default_rng(seed)
        weights = np.concatenate([np.full(n, 1 + t) for t, n in enumerate(TASK_SIZES)])
        flat = rng.choice(offsets[-1], MEMORY, replace=False, p=weights / weights.sum())
        tasks = np.searchsorted(offsets, flat, "right") - 1
        return [(int(t), int(f - offsets[t])) for t, f in zip(tasks, flat, strict=True)]

    assert stats.chisquare(inclusion_counts(300, recent_biased)).pvalue < 1e-6


def test_reservoir_is_seeded_and_restorable() -> None:
    labels = [[0] * n for n in TASK_SIZES]
    a = run(petl.Replay(memory=MEMORY, seed=4), labels)
    b = run(petl.Replay(memory=MEMORY, seed=4), labels)
    assert a.buffer == b.buffer
    assert run(petl.Replay(memory=MEMORY, seed=5), labels).buffer != a.buffer
    restored = petl.Replay(memory=MEMORY, seed=4)
    restored.load_state_dict(a.state_dict())
    assert restored.buffer == a.buffer
    # A restored buffer goes on exactly as the original would.
    more = fake_learner([*labels, [0] * 50])
    a.after_task(more, 4)
    restored.after_task(more, 4)
    assert restored.buffer == a.buffer


def test_class_balanced_keeps_per_class_quotas() -> None:
    replay = petl.Replay(memory=20, policy="class_balanced")
    learner = fake_learner([[0] * 30 + [1] * 30, [2] * 40 + [3] * 3])
    replay.after_task(learner, 0)
    assert Counter(learner.rows(t)[i].label for t, i in replay.buffer) == {0: 10, 1: 10}
    replay.after_task(learner, 1)
    # class 3 has only 3 examples: it keeps them all, its unused slots go to the others
    # (17 over classes 0-2: 6, 6, 5 in class order)
    assert Counter(learner.rows(t)[i].label for t, i in replay.buffer) == {0: 6, 1: 6, 2: 5, 3: 3}
    assert len(replay.buffer) == 20


def test_class_balanced_task_incremental_keys_classes_by_task() -> None:
    # In task-incremental streams label id 0 of task 0 and of task 1 are different classes.
    labels = [[0] * 10 + [1] * 10, [0] * 10 + [1] * 10]
    replay = run(petl.Replay(memory=8, policy="class_balanced"), labels, "task")
    kept = Counter((t, labels[t][i]) for t, i in replay.buffer)
    assert kept == {(0, 0): 2, (0, 1): 2, (1, 0): 2, (1, 1): 2}


def test_balanced_quotas() -> None:
    assert balanced_quotas({0: 50, 1: 50, 2: 5}, 30) == {0: 13, 1: 12, 2: 5}
    assert balanced_quotas({0: 1, 1: 2}, 10) == {0: 1, 1: 2}
    assert sum(balanced_quotas({c: 7 for c in range(3)}, 10).values()) == 10


def test_mix_ratio() -> None:
    labels = [[0] * 100, [1] * 90]
    learner = fake_learner(labels)
    new = [(1, i) for i in range(90)]
    whole = petl.Replay(memory=30)
    whole.after_task(learner, 0)
    # None: the whole buffer is added to the new task's examples
    assert whole.train_items(learner, 1, new) == new + whole.buffer
    mixed = petl.Replay(memory=30, mix_ratio=0.25)
    mixed.after_task(learner, 0)
    items = mixed.train_items(learner, 1, new)
    replayed = items[len(new) :]
    assert items[: len(new)] == new
    assert len(replayed) / len(items) == pytest.approx(0.25)  # 30 of 120
    assert set(replayed) <= set(mixed.buffer)  # drawn from the buffer, with replacement
    assert mixed.train_items(learner, 1, new) == items  # seeded
    first = petl.Replay(memory=30, mix_ratio=0.25)
    assert first.train_items(learner, 0, new) == new  # empty buffer: nothing to mix


def test_bad_replay_options() -> None:
    for kwargs in ({"memory": 0}, {"policy": "fifo"}, {"mix_ratio": 1.0}, {"mix_ratio": 0}):
        with pytest.raises(ConfigError):
            petl.Replay(**kwargs)

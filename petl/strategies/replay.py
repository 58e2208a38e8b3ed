"""Experience replay with a fixed memory budget (in examples).

Storage (what the buffer keeps) is separate from replay (how it is mixed in):
- "reservoir": every example seen gets a random key; the buffer keeps the `memory`
  largest keys, so each example seen so far is kept with equal probability.
- "class_balanced": the budget is split evenly over the classes seen so far; within a
  class the same random keys choose.
Mixing: with `mix_ratio=None` the whole buffer is added to each new task's training set;
with a ratio r, r of the training set is drawn from the buffer (with replacement).
Buffers hold `(task, example)` indices and keys only, and are identical on every process
(the keys come from a generator seeded by the strategy's seed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from petl.errors import ConfigError
from petl.strategies.base import Strategy

POLICIES = ("reservoir", "class_balanced")


def balanced_quotas(counts: dict[int, int], memory: int) -> dict[int, int]:
    """Splits `memory` slots evenly over classes; a class with fewer examples than its share
    keeps all of them and its unused slots go to the others (shares differ by at most one
    between classes that fill them)."""
    quota: dict[int, int] = {}
    left, open_classes = memory, sorted(counts, key=lambda c: (counts[c], c))
    while open_classes:
        share, extra = divmod(left, len(open_classes))
        c = open_classes[0]
        if counts[c] <= share:  # the smallest class fits: keep it whole, share the rest
            quota[c] = counts[c]
            left -= counts[c]
            open_classes.pop(0)
            continue
        for k, c in enumerate(sorted(open_classes)):
            quota[c] = share + (k < extra)
        break
    return quota


class Replay(Strategy):
    """Replay buffer. Args: memory (examples kept), policy, mix_ratio, seed."""

    name = "replay"

    def __init__(
        self,
        memory: int = 200,
        policy: str = "reservoir",
        mix_ratio: float | None = None,
        seed: int = 0,
    ) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"Replay policy must be one of {POLICIES}, got {policy!r}.")
        if memory < 1:
            raise ConfigError(f"Replay memory must be >= 1 example, got {memory!r}.")
        if mix_ratio is not None and not 0 < mix_ratio < 1:
            raise ConfigError(f"Replay mix_ratio must be in (0, 1) or None, got {mix_ratio!r}.")
        self.memory, self.policy, self.mix_ratio, self.seed = memory, policy, mix_ratio, seed
        self._keys: list[float] = []
        self._items: list[tuple[int, int]] = []
        self._classes: list[int] = []

    @property
    def buffer(self) -> list[tuple[int, int]]:
        return list(self._items)

    def add(self, items: list[tuple[int, int]], classes: list[int], task: int) -> None:
        """Offers examples to the buffer (a pure function of seed, task and contents)."""
        rng = np.random.default_rng([self.seed, task])
        keys = self._keys + rng.random(len(items)).tolist()
        pool = self._items + list(items)
        cls = self._classes + list(classes)
        if self.policy == "reservoir":
            keep = np.argsort(keys, kind="stable")[::-1][: self.memory]
        else:
            by_class: dict[int, list[int]] = {}
            for i, c in enumerate(cls):
                by_class.setdefault(c, []).append(i)
            quota = balanced_quotas({c: len(idx) for c, idx in by_class.items()}, self.memory)
            keep_list: list[int] = []
            for c, idx in by_class.items():
                idx.sort(key=lambda i: -keys[i])
                keep_list += idx[: quota[c]]
            keep = np.array(sorted(keep_list, key=lambda i: -keys[i]), dtype=int)
        self._keys = [keys[i] for i in keep]
        self._items = [pool[i] for i in keep]
        self._classes = [cls[i] for i in keep]

    def train_items(
        self, learner: Any, t: int, items: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        if not self._items:
            return items
        if self.mix_ratio is None:
            return items + self._items
        n = round(self.mix_ratio / (1 - self.mix_ratio) * len(items))
        rng = np.random.default_rng([self.seed, t, 1])
        picks = rng.integers(0, len(self._items), size=n)
        return items + [self._items[i] for i in picks]

    def after_task(self, learner: Any, t: int) -> None:
        rows = learner.rows(t)
        # Classes are keyed by (task, label) so task-local label ids never collide.
        classes = [
            t * 100_000 + r.label if learner.stream.scenario == "task" else r.label for r in rows
        ]
        self.add([(t, i) for i in range(len(rows))], classes, t)

    def state_dict(self) -> dict[str, Any]:
        return {"keys": self._keys, "items": self._items, "classes": self._classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._keys = list(state.get("keys", []))
        self._items = [tuple(x) for x in state.get("items", [])]  # type: ignore[misc]
        self._classes = list(state.get("classes", []))

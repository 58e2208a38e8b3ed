"""Experience replay with a fixed memory budget (in examples).

Storage (what the buffer keeps, petl.strategies.storage: "reservoir", "class_balanced",
"herding", "first_come" or any object with its two methods) is separate from replay (how
it is mixed in). Mixing: with `mix_ratio=None` the whole buffer is added to each new task's training set;
with a ratio r, r of the training set is drawn from the buffer (with replacement).
Buffers hold `(task, example)` indices and keys only, and are identical on every process
(the keys come from a generator seeded by the strategy's seed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.storage import POLICIES, Storage, balanced_quotas, get_storage

if TYPE_CHECKING:
    from petl.training.seam import LearnerView

__all__ = ["POLICIES", "Replay", "balanced_quotas"]


class Replay(Strategy):
    """Replay buffer. Args: memory (examples kept), policy (a name in POLICIES or a
    `Storage`), mix_ratio, seed."""

    name = "replay"

    def __init__(
        self,
        memory: int = 200,
        policy: str | Storage = "reservoir",
        mix_ratio: float | None = None,
        seed: int = 0,
    ) -> None:
        self._storage = get_storage(policy)
        if memory < 1:
            raise ConfigError(f"Replay memory must be >= 1 example, got {memory!r}.")
        if mix_ratio is not None and not 0 < mix_ratio < 1:
            raise ConfigError(f"Replay mix_ratio must be in (0, 1) or None, got {mix_ratio!r}.")
        self.memory, self.mix_ratio, self.seed = memory, mix_ratio, seed
        self.policy = self._storage.name
        self._keys: list[float] = []
        self._items: list[tuple[int, int]] = []
        self._classes: list[int] = []

    @property
    def buffer(self) -> list[tuple[int, int]]:
        return list(self._items)

    def add(
        self,
        items: list[tuple[int, int]],
        classes: list[int],
        task: int,
        learner: LearnerView | None = None,
    ) -> None:
        """Offers examples to the buffer (a pure function of seed, task and contents; the
        herding policy also reads the learner's current features)."""
        new = self._storage.keys(learner, task, list(items), list(classes), self.seed)
        keys = self._keys + new
        pool = self._items + list(items)
        cls = self._classes + list(classes)
        keep = self._storage.select(keys, cls, self.memory)
        self._keys = [keys[i] for i in keep]
        self._items = [pool[i] for i in keep]
        self._classes = [cls[i] for i in keep]

    def train_items(
        self, learner: LearnerView, t: int, items: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        if not self._items:
            return items
        if self.mix_ratio is None:
            return items + self._items
        n = round(self.mix_ratio / (1 - self.mix_ratio) * len(items))
        rng = np.random.default_rng([self.seed, t, 1])
        picks = rng.integers(0, len(self._items), size=n)
        return items + [self._items[i] for i in picks]

    def after_task(self, learner: LearnerView, t: int) -> None:
        rows = learner.rows(t)
        self.add([(t, i) for i in range(len(rows))], classes_of(learner, t, rows), t, learner)

    def state_dict(self) -> dict[str, Any]:
        return {"keys": self._keys, "items": self._items, "classes": self._classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._keys = list(state.get("keys", []))
        self._items = [tuple(x) for x in state.get("items", [])]  # type: ignore[misc]
        self._classes = list(state.get("classes", []))


def classes_of(learner: LearnerView, t: int, rows: list[Any]) -> list[int]:
    """Class keys of task t's rows: label ids, keyed by (task, label) in task-incremental
    streams so that task-local label ids never collide."""
    if learner.stream.scenario == "task":
        return [t * 100_000 + r.label for r in rows]
    return [r.label for r in rows]

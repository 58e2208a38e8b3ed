"""Averaged GEM (Chaudhry et al. 2019): at every step, the gradient on a random sample of a
small episodic memory is a reference; if the step's gradient g would raise the memory
loss (g . g_ref < 0) it is projected onto the half-space where it does not:
    g <- g - (g . g_ref) / (g_ref . g_ref) * g_ref.
The memory keeps `memory` examples of the tasks seen so far (any storage policy, default
class-balanced); the reference sample is drawn per step by a generator seeded with the
run's seed and the global step, so every process and a resumed run draw the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.memory_grads import (
    current_grads,
    flat,
    reference_gradient,
    sample_items,
    set_grads,
)
from petl.strategies.replay import Replay
from petl.strategies.storage import Storage

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class AGEM(Strategy):
    """A-GEM. Args: memory (examples kept), sample_size (reference examples per step),
    policy (storage policy), seed."""

    name = "agem"
    shard_aware = True  # works on gathered gradients under FSDP (memory_grads)

    def __init__(
        self,
        memory: int = 200,
        sample_size: int = 32,
        policy: str | Storage = "class_balanced",
        seed: int = 0,
    ) -> None:
        if sample_size < 1:
            raise ConfigError(f"AGEM sample_size must be >= 1, got {sample_size!r}.")
        self._buffer = Replay(memory=memory, policy=policy, seed=seed)
        self.memory, self.sample_size, self.seed = memory, sample_size, seed
        self.policy = self._buffer.policy

    def before_step(self, learner: LearnerView) -> None:
        items = self._buffer.buffer
        if not items:
            return
        rows = learner.item_rows(
            sample_items(items, self.sample_size, self.seed, learner.global_step)
        )
        grads = current_grads(learner)  # full gradients, also under FSDP
        ref = flat(reference_gradient(learner, rows), grads)  # type: ignore[arg-type]
        g = flat(grads, grads)  # type: ignore[arg-type]
        dot = g @ ref
        if dot < 0:
            set_grads(learner, g - dot / (ref @ ref).clamp(min=1e-12) * ref)

    def after_task(self, learner: LearnerView, t: int) -> None:
        self._buffer.after_task(learner, t)

    def state_dict(self) -> dict[str, Any]:
        return self._buffer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buffer.load_state_dict(state)

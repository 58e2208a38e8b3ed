"""Gradient Episodic Memory (Lopez-Paz & Ranzato 2017): every past task keeps a few
examples; each step's gradient g is checked against the gradient g_k of every past
task's memory, and if any would be raised (g . g_k < 0), g is replaced by the closest
vector (in L2) that raises none, found through the dual quadratic program
    min_v 1/2 v^T (G G^T) v + g^T G^T v   s.t. v >= 0,    g <- G^T v + g,
solved with quadprog (`memory_strength` shifts the constraint to v >= strength, as in
the paper's code). Memories are chosen at random per task (seeded by the run's seed and
the task): identical on every process, and so are the gradients and the projection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.memory_grads import (
    current_grads,
    flat,
    reference_gradient,
    sample_items,
    set_grads,
)
from petl.strategies.state import pack, unpack

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


def project(g: torch.Tensor, memories: torch.Tensor, strength: float) -> torch.Tensor:
    """GEM's projection of g (p,) given past tasks' gradients (t, p)."""
    import quadprog

    mem = memories.double().numpy()
    grad = g.double().numpy()
    t = mem.shape[0]
    p = mem @ mem.T
    p = 0.5 * (p + p.T) + np.eye(t) * 1e-3  # strictly positive definite for quadprog
    q = -(mem @ grad)
    v = quadprog.solve_qp(p, q, np.eye(t), np.zeros(t) + strength)[0]
    return torch.from_numpy(v @ mem + grad).to(g.dtype)


class GEM(Strategy):
    """GEM. Args: patterns_per_task (memory per past task), memory_strength, seed."""

    name = "gem"
    shard_aware = True  # works on gathered gradients under FSDP (memory_grads)

    def __init__(
        self, patterns_per_task: int = 32, memory_strength: float = 0.5, seed: int = 0
    ) -> None:
        if patterns_per_task < 1 or memory_strength < 0:
            raise ConfigError(
                "GEM needs patterns_per_task >= 1 and memory_strength >= 0; got "
                f"{patterns_per_task!r}, {memory_strength!r}."
            )
        self.patterns_per_task, self.memory_strength, self.seed = (
            patterns_per_task,
            memory_strength,
            seed,
        )
        self._memories: list[list[list[int]]] = []  # per past task: (task, example) items

    def setup(self, learner: LearnerView) -> None:
        try:
            import quadprog  # noqa: F401
        except ImportError:
            raise ConfigError(
                "GEM solves its projection with quadprog: pip install quadprog "
                "(or petl[avalanche])."
            ) from None

    def before_step(self, learner: LearnerView) -> None:
        if not self._memories:
            return
        grads = current_grads(learner)  # full gradients, also under FSDP
        past = [
            flat(
                reference_gradient(learner, learner.item_rows([(i[0], i[1]) for i in items])), grads
            )  # type: ignore[arg-type]
            for items in self._memories
        ]
        g = flat(grads, grads)  # type: ignore[arg-type]
        memories = torch.stack(past)
        if (memories @ g < 0).any():
            set_grads(learner, project(g.cpu(), memories.cpu(), self.memory_strength))

    def after_task(self, learner: LearnerView, t: int) -> None:
        items = [(t, i) for i in range(len(learner.rows(t)))]
        chosen = sample_items(items, self.patterns_per_task, self.seed, t)
        self._memories.append([list(i) for i in chosen])

    def state_dict(self) -> dict[str, Any]:
        return pack({"memories": self._memories})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._memories = unpack(state, {"memories": []})["memories"]

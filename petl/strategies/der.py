"""Dark Experience Replay, DER and DER++ (Buzzega et al. 2020): the memory keeps examples
with the logits the model gave them; later tasks pay
    alpha * MSE(f(x_mem), stored logits)            (DER)
  + beta  * CE(f(x_mem), y_mem)                     (DER++, beta > 0)
on a memory batch drawn at every step. As in Avalanche's DER, the memory is updated after
each task (reservoir by default) and logits are recorded then, with the task's final
model. Logits of classes added later (a growing class-incremental head) are not
constrained, nor are per-task heads' padding columns.

The memory batch (`batch_size` examples, default the training batch) is drawn by a
generator seeded with the run's seed and the global step and run through the model
inside the training forward, so DDP sees one graph; every process uses the same batch,
and DDP's mean over processes leaves its term unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.memory_grads import sample_items
from petl.strategies.replay import Replay
from petl.strategies.state import pack, unpack
from petl.strategies.storage import Storage

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


def memory_batch(learner: LearnerView, items: list[Any]) -> dict[str, torch.Tensor]:
    """One collated batch of the remembered rows, on the learner's device."""
    return next(iter(learner.batches(learner.item_rows(items), batch_size=len(items))))


class DER(Strategy):
    """DER (beta=0) or DER++ (beta>0). Args: memory, alpha, beta, batch_size, policy, seed."""

    name = "der"

    def __init__(
        self,
        memory: int = 200,
        alpha: float = 0.1,
        beta: float = 0.5,
        batch_size: int | None = None,
        policy: str | Storage = "reservoir",
        seed: int = 0,
    ) -> None:
        if alpha < 0 or beta < 0 or (batch_size is not None and batch_size < 1):
            raise ConfigError(
                f"DER needs alpha >= 0, beta >= 0 and batch_size >= 1; got alpha={alpha!r}, "
                f"beta={beta!r}, batch_size={batch_size!r}."
            )
        self._buffer = Replay(memory=memory, policy=policy, seed=seed)
        self.memory, self.alpha, self.beta = memory, alpha, beta
        self.batch_size, self.seed, self.policy = batch_size, seed, self._buffer.policy
        self._logits: dict[tuple[int, int], torch.Tensor] = {}

    def loss(
        self, learner: LearnerView, batch: Any, logits: Any, loss: torch.Tensor
    ) -> torch.Tensor:
        items = self._buffer.buffer
        if not items:
            return loss
        size = self.batch_size or learner.config.batch_size
        picked = sample_items(items, size, self.seed, learner.global_step)
        mem = memory_batch(learner, picked)
        out = learner.model(mem).float()
        stored = [self._logits[tuple(i)] for i in picked]  # type: ignore[index]
        width = max(s.shape[-1] for s in stored)
        target = out.new_zeros(len(stored), width)
        mask = torch.zeros_like(target, dtype=torch.bool)
        for r, s in enumerate(stored):
            target[r, : len(s)] = torch.nan_to_num(s.to(out.device), neginf=0.0)
            mask[r, : len(s)] = torch.isfinite(s)
        mask &= torch.isfinite(out[:, :width])
        student = torch.where(mask, out[:, :width], 0.0)
        term = self.alpha * F.mse_loss(student[mask], target[mask])
        if self.beta:
            term = term + self.beta * learner.family.loss(out, mem)
        return loss + term

    @torch.no_grad()
    def after_task(self, learner: LearnerView, t: int) -> None:
        self._buffer.after_task(learner, t)
        new = [i for i in self._buffer.buffer if i not in self._logits]
        model = learner.model
        was = model.training
        model.eval()
        for start in range(0, len(new), learner.config.eval_batch_size):
            chunk = new[start : start + learner.config.eval_batch_size]
            out = model(memory_batch(learner, chunk)).float().cpu()
            self._logits.update({tuple(i): row for i, row in zip(chunk, out, strict=True)})  # type: ignore[misc]
        model.train(was)
        kept = set(self._buffer.buffer)
        self._logits = {i: v for i, v in self._logits.items() if i in kept}

    def state_dict(self) -> dict[str, Any]:
        items = sorted(self._logits)
        return {
            **self._buffer.state_dict(),
            **pack(
                {
                    "logit_items": [list(i) for i in items],
                    "logits": [self._logits[i] for i in items],
                }
            ),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buffer.load_state_dict(state)
        saved = unpack(state, {"logit_items": [], "logits": []})
        self._logits = {
            (int(a), int(b)): v
            for (a, b), v in zip(saved["logit_items"], saved["logits"], strict=True)
        }

"""Learning without Forgetting (Li & Hoiem 2016): before task t, the current model's outputs
on t's training data for every earlier task's classes are recorded; while training t,
a distillation term keeps the new outputs close to them:
    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)).
Class-incremental heads distil the concatenated old classes; per-task heads distil each
old task's head separately.

What is distilled is the family's (`Family.distill_targets` / `distill_pairs`): token and
generative families distil per token, old tasks' head blocks on every labelled word
(tokens) or the full next-token distribution at every answer position (generation). Their
teacher is the model's trainable parameters as they were before task t, run on each batch
(`torch.func.functional_call`) instead of stored outputs, which would not fit for a
vocabulary-sized output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.state import pack, unpack

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class LwF(Strategy):
    """Distillation from the model as it was before the current task."""

    name = "lwf"

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        if alpha < 0 or temperature <= 0:
            raise ConfigError("LwF needs alpha >= 0 and temperature > 0.")
        self.alpha, self.temperature = alpha, temperature
        self._teacher: torch.Tensor | None = None
        self._snapshot: dict[str, torch.Tensor] = {}
        self._task = -1

    @torch.no_grad()
    def before_task(self, learner: LearnerView, t: int) -> None:
        self._task, self._teacher, self._snapshot = t, None, {}
        if t == 0:
            return
        targets = learner.family.distill_targets(learner, learner.item_rows(learner.items), t)
        if targets is None:  # the family distils from the parameters as they are now
            self._snapshot = {
                n: p.detach().clone() for n, p in learner.trainable_parameters().items()
            }
        elif targets.numel():  # no old classes yet: nothing to distil
            self._teacher = targets

    def loss(
        self, learner: LearnerView, batch: Any, logits: torch.Tensor, loss: torch.Tensor
    ) -> torch.Tensor:
        if self.alpha == 0 or (self._teacher is None and not self._snapshot):
            return loss
        return loss + self.alpha * self.temperature**2 * self.distillation(learner, batch, logits)

    def distillation(self, learner: LearnerView, batch: Any, logits: torch.Tensor) -> torch.Tensor:
        """KL(teacher || student) at temperature T, summed over the family's pairs (each
        averaged over its rows)."""
        if self._snapshot:
            teacher: torch.Tensor | dict[str, torch.Tensor] = self._snapshot
        else:
            assert self._teacher is not None
            teacher = self._teacher[batch["positions"].cpu()].to(logits.device)
        pairs = learner.family.distill_pairs(learner, batch, logits, self._task, teacher)
        T = self.temperature
        kd = logits.new_zeros((), dtype=torch.float32)
        for student, target in pairs:
            if student.numel():
                kd = kd + F.kl_div(
                    F.log_softmax(student.float() / T, dim=-1),
                    F.softmax(target.float() / T, dim=-1),
                    reduction="batchmean",
                )
        return kd

    _token_kd = distillation  # the name tests use

    def state_dict(self) -> dict[str, Any]:
        return pack({"task": self._task, "teacher": self._teacher, "snapshot": self._snapshot})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = unpack(state, {"task": -1, "teacher": None, "snapshot": {}})
        self._task, self._teacher, self._snapshot = (
            saved["task"],
            saved["teacher"],
            saved["snapshot"],
        )

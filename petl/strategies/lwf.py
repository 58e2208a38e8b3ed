"""Learning without Forgetting (Li & Hoiem 2016): before task t, the current model's outputs
on t's training data for every earlier task's classes are recorded; while training t,
a distillation term keeps the new outputs close to them:
    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)).
Class-incremental heads distil the concatenated old classes; per-task heads distil each
old task's head separately.

Token and generative families (petl.families) distil per token: old tasks' head blocks
on every labelled word (tokens), or the full next-token distribution at every answer
position (generation). Their teacher is the model's trainable parameters as they were
before task t, run on each batch (`torch.func.functional_call`) instead of stored
outputs, which would not fit for a vocabulary-sized output."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.state import pack, unpack


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

    def _old_logits(self, learner: Any, features: torch.Tensor, t: int) -> list[torch.Tensor]:
        heads = learner.model.heads
        blocks = [heads.block(features, k) for k in range(t) if heads.block_sizes[k]]
        if heads.mode == "concat":
            return [torch.cat(blocks, dim=-1)] if blocks else []
        return blocks

    @torch.no_grad()
    def before_task(self, learner: Any, t: int) -> None:
        self._task, self._teacher, self._snapshot = t, None, {}
        if t == 0:
            return
        if learner.family.name != "classification":
            self._snapshot = {
                n: p.detach().clone() for n, p in learner.trainable_parameters().items()
            }
            return
        model = learner.model
        model.eval()
        outs = []
        for batch in learner.batches(learner.item_rows(learner.items)):
            outs.append(
                torch.cat(self._old_logits(learner, model.features(batch), t), dim=-1).float().cpu()
            )
        model.train()
        self._teacher = torch.cat(outs) if outs and outs[0].numel() else None

    def loss(
        self, learner: Any, batch: Any, logits: torch.Tensor, loss: torch.Tensor
    ) -> torch.Tensor:
        if self._snapshot and self.alpha:
            return loss + self.alpha * self.temperature**2 * self._token_kd(learner, batch, logits)
        if self._teacher is None or self.alpha == 0:
            return loss
        student = self._old_logits(learner, learner.model.last_features, self._task)
        teacher = self._teacher[batch["positions"].cpu()].to(logits.device)
        T, start, kd = self.temperature, 0, logits.new_zeros(())
        for block in student:
            width = block.shape[-1]
            target = F.softmax(teacher[:, start : start + width] / T, dim=-1)
            kd = kd + F.kl_div(
                F.log_softmax(block.float() / T, dim=-1), target, reduction="batchmean"
            )
            start += width
        return loss + self.alpha * T * T * kd

    def _token_kd(self, learner: Any, batch: Any, logits: torch.Tensor) -> torch.Tensor:
        """Mean per-token KL between the pre-task model and the current one (tokens,
        generation families)."""
        model, T = learner.model, self.temperature
        labelled = batch["labels"] != -100
        if learner.family.name == "generation":
            at = labelled[:, 1:]  # positions whose next token is an answer token
            student = [logits[:, :-1][at]]
            with torch.no_grad():
                was = model.training
                model.eval()
                teacher = [torch.func.functional_call(model, self._snapshot, (batch,))[:, :-1][at]]
                model.train(was)
        else:
            features = model.last_features
            student = [b[labelled] for b in self._old_logits(learner, features, self._task)]
            with torch.no_grad():
                was = model.training
                model.eval()
                torch.func.functional_call(model, self._snapshot, (batch,))
                old = model.last_features
                model.train(was)
                model.last_features = features
                heads, snap = model.heads, self._snapshot
                blocks = [
                    old.to(heads.weights[k].dtype)
                    @ snap.get(f"heads.weights.{k}", heads.weights[k]).T
                    + snap.get(f"heads.biases.{k}", heads.biases[k])
                    for k in range(self._task)
                    if heads.block_sizes[k]
                ]
                if heads.mode == "concat":
                    blocks = [torch.cat(blocks, dim=-1)] if blocks else []
                teacher = [b[labelled] for b in blocks]
        kd = logits.new_zeros((), dtype=torch.float32)
        for s, t in zip(student, teacher, strict=True):
            if s.numel():
                kd = kd + F.kl_div(
                    F.log_softmax(s.float() / T, dim=-1),
                    F.softmax(t.float() / T, dim=-1),
                    reduction="batchmean",
                )
        return kd

    def state_dict(self) -> dict[str, Any]:
        return pack({"task": self._task, "teacher": self._teacher, "snapshot": self._snapshot})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = unpack(state, {"task": -1, "teacher": None, "snapshot": {}})
        self._task, self._teacher, self._snapshot = (
            saved["task"],
            saved["teacher"],
            saved["snapshot"],
        )

"""iCaRL (Rebuffi et al. 2017): exemplars chosen by herding, distillation of the old
classes' outputs, and nearest-mean-of-exemplars classification.

- Memory: `memory` exemplars, split evenly over the classes seen so far; within a class
  the herding order of the features (petl.strategies.storage.Herding), so shrinking a
  class keeps its best summary. Exemplars are added to each new task's training set.
- Distillation: before task t, the model's old-class logits on that training set are
  recorded; training adds  alpha * BCE(sigmoid(student old logits), sigmoid(teacher))
  (the paper's sigmoid distillation; the new classes keep the family's cross-entropy).
- Prediction: an example goes to the class whose exemplar mean (of L2-normalised
  features, renormalised) is nearest; task-incremental streams choose among the task's
  classes. Before the first task ends, the heads predict.
Needs the classification family (features and a class per example). Every process
computes features and means on all rows, so they agree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from petl.errors import ConfigError, IncompatibleModelError
from petl.strategies.base import Strategy
from petl.strategies.replay import Replay, classes_of
from petl.strategies.state import pack, unpack
from petl.strategies.storage import features

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class ICaRL(Strategy):
    """iCaRL. Args: memory (exemplars kept), alpha (distillation weight)."""

    name = "icarl"

    def __init__(self, memory: int = 200, alpha: float = 1.0) -> None:
        if alpha < 0:
            raise ConfigError(f"ICaRL needs alpha >= 0, got {alpha!r}.")
        self._buffer = Replay(memory=memory, policy="herding")
        self.memory, self.alpha = memory, alpha
        self._teacher: torch.Tensor | None = None  # old-class logits of learner.items
        self._old = 0  # number of old-class logit columns
        self._means = torch.zeros(0)
        self._classes: list[int] = []

    def setup(self, learner: LearnerView) -> None:
        if not learner.family.label_per_row:
            raise IncompatibleModelError(
                "iCaRL classifies by nearest class mean of features: it needs the "
                f"classification family, got {learner.family.name!r}."
            )

    def train_items(self, learner: LearnerView, t: int, items: list[Any]) -> list[Any]:
        return items + self._buffer.buffer

    @torch.no_grad()
    def before_task(self, learner: LearnerView, t: int) -> None:
        self._teacher, self._old = None, 0
        if t == 0 or learner.model.heads.mode != "concat":
            return  # per-task heads: old heads are not trained by new tasks' rows
        self._old = sum(learner.model.heads.block_sizes[:t])
        logits = learner.logits_for(learner.item_rows(learner.items))
        self._teacher = logits[:, : self._old].contiguous()

    def loss(
        self, learner: LearnerView, batch: Any, logits: Any, loss: torch.Tensor
    ) -> torch.Tensor:
        if self._teacher is None or not self.alpha:
            return loss
        target = torch.sigmoid(self._teacher[batch["positions"].cpu()].to(logits.device))
        student = logits[:, : self._old].float()
        # the mean over rows and old classes, rows weighted as in the family's loss (exact
        # under N processes with an uneven last batch)
        bce = F.binary_cross_entropy_with_logits(student, target, reduction="sum") / self._old
        return loss + self.alpha * bce * learner.row_weight

    @torch.no_grad()
    def after_task(self, learner: LearnerView, t: int) -> None:
        self._buffer.after_task(learner, t)
        items = self._buffer.buffer
        feats = features(learner, learner.item_rows(items))
        keys = [classes_of(learner, k, [learner.rows(k)[i]])[0] for k, i in items]
        self._classes = sorted(set(keys))
        means = [feats[[j for j, k in enumerate(keys) if k == c]].mean(0) for c in self._classes]
        self._means = F.normalize(torch.stack(means), dim=-1)
        self._teacher = None

    @torch.no_grad()
    def predict(self, learner: LearnerView, t: int, split: str) -> Any:
        if not self._classes:
            return None
        rows = learner.rows(t, split)
        if not rows:
            return np.zeros(0, dtype=int)
        scores = features(learner, rows) @ self._means.T
        classes = np.array(self._classes)
        if learner.stream.scenario == "task":  # only this task's classes compete
            own = torch.from_numpy((classes // 100_000) == t)
            if not own.any():  # a task not seen yet: its heads predict
                return None
            scores[:, ~own] = -torch.inf
            classes = classes % 100_000
        return classes[scores.argmax(-1).numpy()]

    def state_dict(self) -> dict[str, Any]:
        own = {"teacher": self._teacher, "old": self._old, "means": self._means}
        return {**self._buffer.state_dict(), **pack({**own, "classes": self._classes})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buffer.load_state_dict(state)
        saved = unpack(state, {"teacher": None, "old": 0, "means": torch.zeros(0), "classes": []})
        self._teacher, self._old = saved["teacher"], saved["old"]
        self._means, self._classes = saved["means"], saved["classes"]

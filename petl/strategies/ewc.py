"""Elastic Weight Consolidation (Kirkpatrick et al. 2017) over the trainable parameters.

After each task, the diagonal empirical Fisher F (mean of squared per-example gradients of
the loss) and the parameters theta* are stored; later tasks pay
    lam / 2 * sum_k sum_i F_k,i (theta_i - theta*_k,i)^2
("separate": one term per past task) or one term with F accumulated as
F <- decay * F + F_new and theta* the latest parameters ("online", Schwarz et al. 2018).
Only trainable parameters count: with a PEFT method that is the adapter and head, a few
hundred thousand floats instead of the whole model.

The empirical Fisher needs one backward pass per example (`fisher_samples` of them per
task, at batch size 1). `fisher_batch_size=B > 1` estimates it as Avalanche's EWCPlugin
does instead: the mean over mini-batches of B of the squared mini-batch gradient, about B
times cheaper and coarser (it is the empirical Fisher only for B=1: cross-example
products enter the square)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.state import pack, unpack

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class EWC(Strategy):
    """EWC penalty. Args: lam (strength), mode ("separate" | "online"), decay (online
    only), fisher_samples (examples per task used to estimate the Fisher),
    fisher_batch_size (examples per gradient in that estimate: 1, the empirical Fisher;
    more, Avalanche's cheaper mini-batch estimate)."""

    name = "ewc"

    def __init__(
        self,
        lam: float = 1e3,
        mode: str = "separate",
        decay: float = 1.0,
        fisher_samples: int = 200,
        fisher_batch_size: int = 1,
    ) -> None:
        if mode not in ("separate", "online"):
            raise ConfigError(f"EWC mode must be 'separate' or 'online', got {mode!r}.")
        if lam < 0 or fisher_samples < 1 or fisher_batch_size < 1 or not 0 <= decay <= 1:
            raise ConfigError(
                f"EWC needs lam >= 0, fisher_samples >= 1, fisher_batch_size >= 1 and "
                f"0 <= decay <= 1; got lam={lam!r}, fisher_samples={fisher_samples!r}, "
                f"fisher_batch_size={fisher_batch_size!r}, decay={decay!r}."
            )
        self.lam, self.mode, self.decay, self.fisher_samples = lam, mode, decay, fisher_samples
        self.fisher_batch_size = fisher_batch_size
        self._terms: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def after_task(self, learner: LearnerView, t: int) -> None:
        if self.fisher_batch_size == 1:
            fisher = empirical_fisher(learner, t, self.fisher_samples)
        else:
            fisher = minibatch_fisher(learner, t, self.fisher_samples, self.fisher_batch_size)
        anchor = {n: p.detach().clone() for n, p in learner.trainable_parameters().items()}
        if self.mode == "separate" or not self._terms:
            self._terms.append((fisher, anchor))
            return
        old, _ = self._terms[0]
        merged = {n: f + self.decay * old[n] if n in old else f for n, f in fisher.items()}
        self._terms = [(merged, anchor)]

    def penalty(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor | float:
        total: torch.Tensor | float = 0.0
        for fisher, anchor in self._terms:
            for name, f in fisher.items():
                if name in params:
                    total = total + (f * (params[name] - anchor[name]) ** 2).sum()
        return total

    def loss(
        self, learner: LearnerView, batch: Any, logits: torch.Tensor, loss: torch.Tensor
    ) -> torch.Tensor:
        if not self._terms:
            return loss
        return loss + self.lam / 2 * self.penalty(learner.trainable_parameters())

    def state_dict(self) -> dict[str, Any]:
        return pack({"fisher": [f for f, _ in self._terms], "anchor": [a for _, a in self._terms]})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = unpack(state, {"fisher": [], "anchor": []})
        self._terms = list(zip(saved["fisher"], saved["anchor"], strict=True))


def fisher_rows(learner: LearnerView, t: int, samples: int) -> list[Any]:
    """The training rows of task t that estimate its Fisher: all of them, or `samples` drawn
    without replacement by a generator seeded with the run's seed and t."""
    rows = learner.rows(t)
    if len(rows) <= samples:
        return list(rows)
    pick = np.random.default_rng([learner.config.seed, t]).choice(len(rows), samples, replace=False)
    return [rows[i] for i in sorted(pick.tolist())]


def empirical_fisher(learner: LearnerView, t: int, samples: int) -> dict[str, torch.Tensor]:
    """Mean of squared per-example gradients over up to `samples` training examples of task
    t (a seeded random subset: data files are often sorted by label); examples are split
    across processes and the sums reduced."""
    return minibatch_fisher(learner, t, samples, batch_size=1)


def minibatch_fisher(
    learner: LearnerView, t: int, samples: int, batch_size: int
) -> dict[str, torch.Tensor]:
    """Mean over mini-batches of `batch_size` of the squared mini-batch gradient, over the
    rows `empirical_fisher` uses (batch_size 1: exactly the empirical Fisher). Each process
    batches its own share of the rows; sums and batch counts are reduced."""
    params = learner.trainable_parameters()
    rows = fisher_rows(learner, t, samples)
    acc = learner.accelerator
    mine = rows[acc.process_index :: acc.num_processes]
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    model = learner.model
    was_training = model.training
    model.eval()
    from petl.progress import bar

    batches = learner.batches(mine, batch_size=batch_size)
    total = -(-len(mine) // batch_size)
    for batch in bar(learner, batches, total=total, desc="fisher"):
        model.zero_grad(set_to_none=True)
        loss = learner.family.loss(model(batch), batch)  # the task family's training loss
        loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    count = torch.tensor(float(total))  # batches of this process (batch_size 1: its rows)
    if acc.num_processes > 1:
        fisher = {n: acc.reduce(f, reduction="sum") for n, f in fisher.items()}
        count = acc.reduce(count.to(acc.device), reduction="sum").cpu()
    return {n: f / max(float(count), 1.0) for n, f in fisher.items()}

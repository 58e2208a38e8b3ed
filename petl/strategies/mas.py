"""Memory Aware Synapses (Aljundi et al. 2018): a parameter's importance is how much the
model's output moves when it moves, measured without labels:
    Omega_i = mean over examples x of | d ||f(x)||^2 / d theta_i |
(f: the model's output vector; per-task heads' padding columns excluded). After each
task the new importance is merged into the running one,
    Omega <- alpha * Omega + (1 - alpha) * Omega_new      (the first task: Omega_new),
and later tasks pay  lam * sum_i Omega_i (theta_i - theta*_i)^2  with theta* the
parameters at the end of the last task. Examples are split across processes and the
sums reduced, as EWC's Fisher is. Between tasks the state is Omega and theta*."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.ewc import fisher_rows
from petl.strategies.state import pack, unpack

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class MAS(Strategy):
    """MAS penalty. Args: lam (strength), alpha (weight of the old importance),
    samples (examples per task used to estimate the importance)."""

    name = "mas"

    def __init__(self, lam: float = 1.0, alpha: float = 0.5, samples: int = 200) -> None:
        if lam < 0 or not 0 <= alpha <= 1 or samples < 1:
            raise ConfigError(
                f"MAS needs lam >= 0, 0 <= alpha <= 1 and samples >= 1; got lam={lam!r}, "
                f"alpha={alpha!r}, samples={samples!r}."
            )
        self.lam, self.alpha, self.samples = lam, alpha, samples
        self._omega: dict[str, torch.Tensor] = {}
        self._anchor: dict[str, torch.Tensor] = {}

    def after_task(self, learner: LearnerView, t: int) -> None:
        new = importance(learner, t, self.samples)
        self._omega = {
            n: self.alpha * self._omega[n] + (1 - self.alpha) * v if n in self._omega else v
            for n, v in new.items()
        }
        self._anchor = {n: p.detach().clone() for n, p in learner.trainable_parameters().items()}

    def loss(
        self, learner: LearnerView, batch: Any, logits: Any, loss: torch.Tensor
    ) -> torch.Tensor:
        if not self._omega:
            return loss
        params = learner.trainable_parameters()
        penalty = sum(
            (o * (params[n] - self._anchor[n]) ** 2).sum()
            for n, o in self._omega.items()
            if n in params and n in self._anchor
        )
        return loss + self.lam * penalty

    def state_dict(self) -> dict[str, Any]:
        return pack({"omega": self._omega, "anchor": self._anchor})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = unpack(state, {"omega": {}, "anchor": {}})
        self._omega, self._anchor = saved["omega"], saved["anchor"]


def importance(learner: LearnerView, t: int, samples: int) -> dict[str, torch.Tensor]:
    """Mean absolute gradient of the squared L2 norm of the output, per example."""
    params = learner.trainable_parameters()
    rows = fisher_rows(learner, t, samples)
    acc = learner.accelerator
    mine = rows[acc.process_index :: acc.num_processes]
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    model = learner.model
    was = model.training
    model.eval()
    for batch in learner.batches(mine, batch_size=1):
        out = model(batch).float()
        norm = torch.where(torch.isfinite(out), out, 0.0).pow(2).sum(-1).mean()
        grads = torch.autograd.grad(norm, list(params.values()), allow_unused=True)
        for n, g in zip(params, grads, strict=True):
            if g is not None:
                total[n] += g.abs()
    model.train(was)
    if acc.num_processes > 1:
        total = {n: acc.reduce(v, reduction="sum") for n, v in total.items()}
    return {n: v / max(len(rows), 1) for n, v in total.items()}

"""Synaptic Intelligence (Zenke et al. 2017): each parameter's importance is its share of
the loss decrease along the training trajectory, and later tasks pay to move important
parameters:  loss + lam * sum_i Omega_i (theta_i - theta*_i)^2.

While task t trains, every step adds  w_i += -g_i * (theta_i after - theta_i before),
with g the gradient the step used (read in `before_step`: after backward and the
all-reduce, before clipping). After the task,
    Omega_i += max(w_i, 0) / ((theta_i(end) - theta_i(start))^2 + xi),
and theta* becomes the task's end point. Negative path integrals (steps that raised the
loss, momentum overshoot) are clipped to 0 so that no parameter is pushed away from
theta*. Between tasks the state is Omega and theta* (2 floats per trainable parameter)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.state import pack, unpack
from petl.training import sharding

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class SI(Strategy):
    """SI penalty. Args: lam (strength c), xi (damping of the denominator)."""

    name = "si"
    shard_aware = True  # gathers the step's gradients and weights under FSDP

    def __init__(self, lam: float = 1.0, xi: float = 1e-3) -> None:
        if lam < 0 or xi <= 0:
            raise ConfigError(f"SI needs lam >= 0 and xi > 0; got lam={lam!r}, xi={xi!r}.")
        self.lam, self.xi = lam, xi
        self._omega: dict[str, torch.Tensor] = {}  # importance, summed over past tasks
        self._anchor: dict[str, torch.Tensor] = {}  # theta* at the end of the last task
        self._start: dict[str, torch.Tensor] = {}  # theta at the start of this task
        self._w: dict[str, torch.Tensor] = {}  # path integral of this task
        self._grad: dict[str, torch.Tensor] = {}  # gradient of the step in progress

    def before_task(self, learner: LearnerView, t: int) -> None:
        params = learner.trainable_parameters()
        self._start = {n: p.detach().clone() for n, p in params.items()}
        self._w = {n: torch.zeros_like(p) for n, p in params.items()}

    def before_step(self, learner: LearnerView) -> None:
        # w -= g * (theta_new - theta_old): the g * theta_old half now, the rest after
        # sharding.full: under FSDP the step's gradients and weights are gathered, so the
        # path integral is the full one, as in one process (plain tensors pass through)
        self._grad = {}
        for n, p in learner.trainable_parameters().items():
            if p.grad is not None and n in self._w:
                self._grad[n] = sharding.full(p.grad.detach()).clone()
                self._w[n] += self._grad[n] * sharding.full(p.detach())

    def after_step(self, learner: LearnerView) -> None:
        params = learner.trainable_parameters()
        for n, g in self._grad.items():
            self._w[n] -= g * sharding.full(params[n].detach())
        self._grad = {}

    def after_task(self, learner: LearnerView, t: int) -> None:
        for n, p in learner.trainable_parameters().items():
            if n not in self._w:
                continue
            omega = self._w[n].clamp(min=0) / ((p.detach() - self._start[n]) ** 2 + self.xi)
            self._omega[n] = self._omega[n] + omega if n in self._omega else omega
            self._anchor[n] = p.detach().clone()
        self._start, self._w = {}, {}  # only Omega and theta* are kept between tasks

    def loss(
        self, learner: LearnerView, batch: Any, logits: Any, loss: torch.Tensor
    ) -> torch.Tensor:
        if not self._omega:
            return loss
        params = learner.trainable_parameters()
        penalty = sum(
            (o * (params[n] - self._anchor[n]) ** 2).sum()
            for n, o in self._omega.items()
            if n in params
        )
        return loss + self.lam * penalty

    def state_dict(self) -> dict[str, Any]:
        names = ("omega", "anchor", "start", "w")
        return pack({k: getattr(self, f"_{k}") for k in names})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = unpack(state, {"omega": {}, "anchor": {}, "start": {}, "w": {}})
        self._omega, self._anchor = saved["omega"], saved["anchor"]
        self._start, self._w = saved["start"], saved["w"]

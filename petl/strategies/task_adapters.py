"""Per-task adapters: every task trains a fresh copy of the method's parameters (its
"adapter") and its own head; earlier adapters are kept frozen in a store.

At test time the task id, when the scenario gives it, picks the adapter. Without task ids
(class- and domain-incremental) an adapter must be chosen per input. `route="prototype"`
infers the task from the frozen pretrained features, as S-Prompts (Wang et al., NeurIPS
2022) and HiDe-Prompt's task-identity inference (Wang et al., NeurIPS 2023) do: a FeCAM
head (shared-covariance Gaussians, petl.FeCAM) over every (task, label) pair seen, fitted
from one adapter-free forward pass over each task's training rows and keeping no example;
the task of the best-scoring pair picks the adapter, whose own head answers. The default,
`route="confidence"`, needs no pretrained features (it works with full fine-tuning): every
stored adapter scores the example with its own head, and the adapter whose softmax is most confident
gives the prediction. Confidence is the top probability rescaled by the head's size K,
(p_max - 1/K) / (1 - 1/K), from 0 (uniform) to 1 (certain), so that heads with different
numbers of classes compete fairly (a raw 2-class p_max is never below 0.5, a 14-class one
can be 0.07). A label the winning adapter predicts that the example's task does not
have counts as wrong. Adapters are swapped in place, so
the model holds one adapter at a time and any PEFT method (or full fine-tuning) works.

Token and generative families (petl.families) use the same rule through the family's
confidence: tokens, the mean over a sentence's words of the top tag probability under
each adapter's own head; generation (no heads), the mean log-probability per token of
the answer each adapter gives (its own greedy generation, or its best label string): the
adapter with the lowest answer perplexity answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.fecam import FeCAM
from petl.strategies.protocol import Capabilities
from petl.strategies.state import pack, unpack

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


ROUTES = ("confidence", "prototype")


class TaskAdapters(Strategy):
    """A new adapter and head per task; routing by task id, by confidence or by a
    prototype router on pretrained features."""

    name = "task_adapters"
    # earlier tasks' heads belong to their stored adapters: each task its own, frozen after
    capabilities = Capabilities(per_task_heads=True, freeze_old_heads=True)

    def __init__(self, route: str = "confidence", router_shrink: float = 0.5) -> None:
        """Args:
        route: How class- and domain-incremental inputs pick an adapter: "confidence"
            (every adapter answers, the most confident wins; any method) or "prototype"
            (the task inferred from pretrained features; needs a peft method, one
            adapter-free forward pass per task's training rows, (C d + d^2) floats).
        router_shrink: FeCAM's covariance shrinkage for the prototype router.
        """
        if route not in ROUTES:
            raise ConfigError(
                f"TaskAdapters route must be one of {', '.join(ROUTES)}, got {route!r}."
            )
        self.route = route
        self._init: dict[str, torch.Tensor] = {}
        self._store: list[dict[str, torch.Tensor]] = []
        self._router: FeCAM | None = None
        # pretrained features of evaluated rows: adapter-free, so they never change; kept
        # with the rows list they came from (a new stream's rows are a new list)
        self._features: dict[tuple[int, str], tuple[list, torch.Tensor]] = {}
        if route == "prototype":
            # routed on the sentence embedding, as measured (docs/continual-learning.md)
            self._router = FeCAM(shrink=router_shrink, layers="last")
            self._router._pretrained_only = True

    def _adapter(self, learner: LearnerView) -> dict[str, torch.nn.Parameter]:
        return {
            n: p for n, p in learner.trainable_parameters().items() if not n.startswith("heads.")
        }

    def _load(self, learner: LearnerView, state: dict[str, torch.Tensor]) -> None:
        own = dict(learner.model.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                own[name].copy_(value)

    def setup(self, learner: LearnerView) -> None:
        self._init = {n: p.detach().clone() for n, p in self._adapter(learner).items()}
        if self._router is not None:
            if not learner.family.label_per_row:
                raise ConfigError(
                    "TaskAdapters(route='prototype') routes on one feature vector per input; "
                    f"the {learner.family.name!r} family is not supported. Use "
                    "route='confidence' (the family's own confidence picks the adapter)."
                )
            if not hasattr(learner.model.backbone, "disable_adapter"):
                raise ConfigError(
                    "TaskAdapters(route='prototype') routes on the pretrained features, which "
                    "needs a peft method whose adapters can be switched off (e.g. "
                    f"method='lora'); got method={learner.method!r}. Use "
                    "route='confidence' with this method."
                )
            self._router.setup(learner)

    def before_task(self, learner: LearnerView, t: int) -> None:
        if t > 0:
            self._load(learner, self._init)

    def after_task(self, learner: LearnerView, t: int) -> None:
        self._store.append({n: p.detach().clone() for n, p in self._adapter(learner).items()})
        if self._router is not None:
            self._router.add_task(learner, t)
            self._router.solve()

    def route_tasks(
        self, learner: LearnerView, rows: list, features: torch.Tensor | None = None
    ) -> np.ndarray | None:
        """The task inferred for each row by the prototype router (None: no router, or
        nothing stored yet); `features`: the rows' pretrained features, when known."""
        router = self._router
        if router is None or not self._store:
            return None
        x = features if features is not None else self._pretrained_features(learner, rows)
        scores = router._scores(x)
        scores[:, router._stats["counts"] == 0] = -torch.inf
        tasks = np.searchsorted(router._offsets, scores.argmax(1).numpy(), side="right") - 1
        return tasks.astype(np.int64)

    def _pretrained_features(self, learner: LearnerView, rows: list) -> torch.Tensor:
        assert self._router is not None
        return torch.cat([f for f, _ in self._router._feature_batches(learner, rows)])

    @contextlib.contextmanager
    def task_parameters(self, learner: LearnerView, k: int) -> Iterator[None]:
        """Task k's stored adapter in the model for the duration (the adapter in training
        while task k is not stored yet); `Learner.predict` routes through it."""
        current = {n: p.detach().clone() for n, p in self._adapter(learner).items()}
        try:
            if k < len(self._store):
                self._load(learner, self._store[k])
            yield
        finally:
            self._load(learner, current)

    def predict(self, learner: LearnerView, t: int, split: str) -> Any:
        rows = learner.rows(t, split)
        current = {n: p.detach().clone() for n, p in self._adapter(learner).items()}
        try:
            if learner.stream.scenario == "task" or not self._store:
                if t < len(self._store):
                    self._load(learner, self._store[t])
                return learner.family.predict(learner, t, rows)[0]
            candidates = self._candidates(learner, current)
            if self._router is not None and len(self._store) > learner.task_index:
                cached = self._features.get((t, split))
                if cached is None or cached[0] is not rows:
                    cached = self._features[t, split] = (
                        rows,
                        self._pretrained_features(learner, rows),
                    )
                return self._routed(learner, t, rows, dict(candidates), cached[1])
            return self._confidence_rule(learner, t, rows, candidates)
        finally:
            self._load(learner, current)

    def _candidates(
        self, learner: LearnerView, current: dict[str, torch.Tensor]
    ) -> list[tuple[int, dict]]:
        """(task, adapter) pairs the rule chooses from: every stored adapter, plus the one
        being trained while its task is not stored yet (validation during training)."""
        out = list(enumerate(self._store))
        if len(self._store) <= learner.task_index:
            out.append((learner.task_index, current))
        return out

    def _confidence_rule(self, learner: LearnerView, t: int, rows: list, candidates: list) -> Any:
        """Each stored adapter answers through its own head; per example the most
        confident adapter's answer is kept, as a prediction of task t (the family's
        confidence is comparable across heads)."""
        family = learner.family
        best: list = [None] * len(rows)
        best_conf = np.full(len(rows), -np.inf)
        for k, state in candidates:
            self._load(learner, state)
            preds, conf = family.predict(learner, t, rows, head=k)
            answers = family.answers(learner, k, preds)
            better = conf > best_conf if k else np.ones(len(rows), dtype=bool)
            for i in np.flatnonzero(better):
                best[i], best_conf[i] = answers[i], conf[i]
        return family.in_task(learner, t, best)

    def _routed(
        self, learner: LearnerView, t: int, rows: list, adapters: dict, features: torch.Tensor
    ) -> Any:
        """Each row answered by the adapter (and head) of the task the router infers."""
        family = learner.family
        tasks = self.route_tasks(learner, rows, features)
        assert tasks is not None
        best: list = [None] * len(rows)
        for k in np.unique(tasks):
            idx = np.flatnonzero(tasks == k)
            self._load(learner, adapters[int(k)])
            preds, _ = family.predict(learner, t, [rows[i] for i in idx], head=int(k))
            for i, answer in zip(idx, family.answers(learner, int(k), preds), strict=True):
                best[i] = answer
        return family.in_task(learner, t, best)

    def state_dict(self) -> dict[str, Any]:
        router = self._router.state_dict() if self._router is not None else {}
        return pack({"store": self._store, "router": router})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = unpack(state, {"store": [], "router": {}})
        self._store = saved["store"]
        if self._router is not None and saved["router"]:
            self._router.load_state_dict(saved["router"])

"""The common machinery of statistic heads (NCM, FeCAM, RanPAC, and APER's head).

A statistic head never trains by gradient and never keeps an example: after each task it
runs one forward pass over the task's training rows, adds their features to running sums
(class sums, counts, second moments, Gram matrices: all plain sums, kept in float64), and
derives its classifier from the sums. Because the statistics are sums, the head after task
T is the head fitted on all T tasks at once. Features are gathered from every process
before they are added (`petl.features.iter_features`), so every process holds the same
statistics and 2 processes give the head of 1.

Class keys: in class- and domain-incremental streams a class is its logit column in the
stream's label space; with per-task heads (task-incremental, TaskAdapters) it is the
task's offset plus the label's index in its task. A given task id restricts the candidate
classes to that task's own; otherwise every class seen so far is a candidate.

Declared capability `Capabilities(gradient_tasks=0)`: the Learner trains task t by gradient
only while t < gradient_tasks for every strategy that declares it (None: always), so a
Learner with only statistic heads skips gradient training entirely."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from petl.errors import ConfigError
from petl.features import LayerSpec, check_layers, features_for, iter_features
from petl.strategies.base import Strategy
from petl.strategies.protocol import Capabilities

if TYPE_CHECKING:
    from petl.training.seam import LearnerView

CHUNK = 1024  # rows whose adapted and pretrained features are held at once (APER)


class StatisticHead(Strategy):
    """Base of the statistic heads: class keys, feature passes, prediction, checkpoints.

    Subclasses implement `_accumulate(x, keys, held)` (x: float64 [B, d], already
    normalised), `_solve()` (the classifier from the sums) and `_scores(x)` ([N, C])."""

    name = "statistic_head"
    capabilities = Capabilities(gradient_tasks=0)
    # the statistics' names, in state_dict; subclasses list theirs
    STATS: tuple[str, ...] = ()

    def __init__(self, layers: LayerSpec = "last") -> None:
        check_layers(layers)
        self.layers = layers if isinstance(layers, str) else [int(i) for i in layers]
        self._stats: dict[str, torch.Tensor] = {}
        self._dim: int | None = None  # width of the features the statistics were built on
        self._seen: list[int] = []
        self._cache: dict[tuple[int, str], tuple[int, torch.Tensor]] = {}
        self._pretrained_too = False  # APER: pretrained features concatenated
        self._pretrained_only = False  # TaskAdapters' router: adapters switched off
        self._offsets: list[int] = []
        self._per_task = False

    # ---- class keys -----------------------------------------------------------------------
    def setup(self, learner: LearnerView) -> None:
        if not learner.family.label_per_row:
            raise ConfigError(
                f"{type(self).__name__} classifies one feature vector per input; the "
                f"{learner.family.name!r} family is not supported. Use the classification "
                "family (or a trained-head strategy such as petl.Replay for this family)."
            )
        stream = learner.stream
        self._per_task = bool(getattr(learner, "per_task_heads", False))
        if self._per_task:
            sizes = [len(t.labels) for t in stream.tasks]
        else:
            sizes = [len(b) for b in stream.block_labels()]
        self._offsets = [int(x) for x in np.cumsum([0, *sizes])]
        self._cache.clear()

    @property
    def num_classes(self) -> int:
        return self._offsets[-1]

    def _keys(self, t: int, labels: torch.Tensor) -> torch.Tensor:
        return labels + self._offsets[t] if self._per_task else labels

    def _candidates(self, t: int) -> torch.Tensor:
        if self._per_task:  # the task id is given: that task's own classes
            return torch.arange(self._offsets[t], self._offsets[t + 1])
        return torch.nonzero(self._stats["counts"] > 0).flatten()

    # ---- features -------------------------------------------------------------------------
    def _feature_batches(self, learner: LearnerView, rows: Any):
        """(normalised features, labels) batches: each part (each layer; adapted and
        pretrained) L2-normalised, then the whole."""
        if not self._pretrained_too:
            for x, y in iter_features(
                learner, rows, pretrained=self._pretrained_only, layers=self.layers
            ):
                yield _unit(x), y
            return
        # The two passes run one after the other, a chunk of rows at a time: Accelerate
        # tracks one active data loader for gather_for_metrics, so they cannot interleave.
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            pairs = list(iter_features(learner, chunk, layers=self.layers))
            pretrained = features_for(learner, chunk, pretrained=True, layers=self.layers)
            x = torch.cat([_unit(torch.cat([p for p, _ in pairs])), _unit(pretrained)], 1)
            yield F.normalize(x, dim=-1), torch.cat([y for _, y in pairs])

    def _init(self, dim: int) -> None:
        """Allocates the zero statistics for `dim`-wide features (subclasses extend)."""
        self._stats = {"counts": torch.zeros(self.num_classes, dtype=torch.float64)}

    def held_out(self, learner: LearnerView, t: int, n: int) -> torch.Tensor:
        """Which of task t's n training rows are held out (RanPAC's ridge choice): a pure
        function of (seed, task), so incremental and one-shot fits agree."""
        frac = float(getattr(self, "val_fraction", 0.0))
        gen = torch.Generator().manual_seed(learner.config.seed * 1_000_003 + 7_919 * t + 1)
        return torch.rand(n, generator=gen) < frac

    def add_task(self, learner: LearnerView, t: int) -> None:
        """One forward pass over task t's training rows, added to the statistics."""
        rows = learner.rows(t, "train")
        held = self.held_out(learner, t, len(rows))
        start = 0
        for x, labels in self._feature_batches(learner, rows):
            self.add_features(x, self._keys(t, labels), held[start : start + len(x)])
            start += len(x)
        if t not in self._seen:
            self._seen.append(t)
        self._cache.clear()

    def add_features(self, x: torch.Tensor, keys: torch.Tensor, held: torch.Tensor) -> None:
        """Adds normalised features `x` [B, d] of classes `keys` [B] to the sums (`held`:
        the rows kept apart to choose hyper-parameters). Call `solve()` afterwards."""
        if not self._stats:
            self._init(x.shape[1])
            self._dim = int(x.shape[1])
        self._check_width(x)
        self._stats["counts"] += torch.bincount(keys, minlength=self.num_classes).double()
        self._accumulate(x, keys, held)

    def solve(self) -> None:
        """Derives the classifier from the statistics."""
        self._solve()

    def after_task(self, learner: LearnerView, t: int) -> None:
        self.add_task(learner, t)
        self._solve()

    # ---- prediction -----------------------------------------------------------------------
    def predict(self, learner: LearnerView, t: int, split: str) -> np.ndarray | None:
        if not self._seen:
            return None  # nothing fitted yet: the model's own heads answer
        rows = learner.rows(t, split)
        key = (t, split)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == learner.global_step:
            x = cached[1]  # the backbone has not changed since: same features
        else:
            parts = [f for f, _ in self._feature_batches(learner, rows)]
            x = torch.cat(parts) if parts else torch.zeros(0, 1, dtype=torch.float64)
            self._cache[key] = (learner.global_step, x)
        if not len(x):
            return np.zeros(0, dtype=np.int64)
        self._check_width(x)
        candidates = self._candidates(t)
        scores = self._scores(x)[:, candidates]
        keys = candidates[scores.argmax(1)]
        labels = keys - self._offsets[t] if self._per_task else keys
        return labels.numpy()

    # ---- subclass API ---------------------------------------------------------------------
    def _accumulate(self, x: torch.Tensor, keys: torch.Tensor, held: torch.Tensor) -> None:
        raise NotImplementedError

    def _solve(self) -> None:
        raise NotImplementedError

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- checkpoints ----------------------------------------------------------------------
    def _check_width(self, x: torch.Tensor) -> None:
        """Statistics of d-wide features cannot score e-wide ones (RanPAC would silently
        draw another projection): say which setting differs."""
        if self._dim is not None and x.shape[1] != self._dim:
            raise ConfigError(
                f"{type(self).__name__}'s statistics were built on {self._dim}-wide features, "
                f"but these features are {x.shape[1]} wide (layers={self.layers!r}). The head "
                "must read the layers (and model) it was fitted with: pass the same `layers` "
                "(older petl versions read only the last layer: layers='last')."
            )

    def state_dict(self) -> dict[str, Any]:
        return {**self._stats, "seen": list(self._seen), "feature_dim": self._dim}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._seen = [int(t) for t in state.get("seen", [])]
        dim = state.get("feature_dim")
        self._dim = int(dim) if dim is not None else None
        self._stats = {k: v.clone() for k, v in state.items() if isinstance(v, torch.Tensor)}
        self._cache.clear()
        if self._seen:
            self._solve()

    def head_passes(self) -> int:
        """Forward passes over a task's training rows per head update."""
        return 2 if self._pretrained_too else 1

    def state_floats(self) -> int:
        """Size of the kept state, in floats (independent of the examples seen)."""
        return sum(v.numel() for v in self._stats.values())


def _unit(x: torch.Tensor) -> torch.Tensor:
    """float64 features [B, d] with unit norm; [B, k, d] (k layers): each layer normalised,
    then concatenated, so that no layer outweighs another by its scale."""
    x = x.double()
    if x.dim() == 3:
        x = F.normalize(x, dim=-1).flatten(1)
    return F.normalize(x, dim=-1)


def class_means(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return sums / counts.clamp(min=1).unsqueeze(1)

"""NCM: nearest class mean by cosine over frozen features (SimpleCIL, Zhou et al. 2023)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from petl.features import LayerSpec
from petl.strategies.stat_heads import StatisticHead, class_means


class NCM(StatisticHead):
    """Cosine similarity to each class's mean feature; no training, no examples kept.

    State: the class sums and counts, (C x d + C) floats. Features are L2-normalised
    mean-pooled embeddings for sentence-transformers models (see petl.features).

    Example:
        >>> learner = petl.Learner(model_path, strategies=[petl.NCM()])
    """

    name = "ncm"
    STATS = ("counts", "sums")

    def __init__(self, layers: LayerSpec = "last") -> None:
        """Args:
        layers: Hidden states whose pooled features are compared: "last" (default: the
            sentence embedding; cosine to class means over every layer was worse on three
            of four streams, docs/strategies.md), "all" or a list of indices.
        """
        super().__init__(layers)

    def _init(self, dim: int) -> None:
        super()._init(dim)
        self._stats["sums"] = torch.zeros(self.num_classes, dim, dtype=torch.float64)

    def _accumulate(self, x: torch.Tensor, keys: torch.Tensor, held: torch.Tensor) -> None:
        self._stats["sums"].index_add_(0, keys, x)

    def _solve(self) -> None:
        means = class_means(self._stats["sums"], self._stats["counts"])
        self._prototypes = F.normalize(means, dim=-1)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) @ self._prototypes.T

"""FeCAM: Mahalanobis distance to class means with shrunk covariances (Goswami et al.,
NeurIPS 2023), over frozen features, from running sums."""

from __future__ import annotations

from typing import Any

import torch

from petl.errors import ConfigError
from petl.features import LayerSpec
from petl.strategies.stat_heads import StatisticHead, class_means

COVARIANCES = ("shared", "class")


class FeCAM(StatisticHead):
    """Gaussian class models with shrunk covariance; no training, no examples kept.

    Args:
        covariance: "shared" (default): one within-class covariance for all classes, i.e.
            linear discriminant analysis; measured better than per-class covariances with
            tens of rows per class in 384 dimensions (docs/strategies.md). "class": each
            class's own covariance, shrunk halfway toward the shared one, scored by
            Mahalanobis distance plus log-determinant (FeCAM's class-wise form).
        shrink: Weight of the isotropic target in `(1 - shrink) S + shrink (tr S / d) I`.
        across_sources: Under APER with pretrained features the head reads two sources, the
            adapted and the pretrained features. False (default): the shared covariance is
            estimated within each source and the two are scored as independent blocks
            (block-diagonal LDA: the sum of one LDA per source), which halves the state and
            measured at least as accurate on 4 of 5 streams (docs/strategies.md "APER's
            covariance per source"). True: one covariance over both, cross terms included.
            No effect with one source or with covariance="class" (always over both).
        layers: Hidden states whose pooled features are concatenated (each L2-normalised):
            "all" (default: every transformer layer; better than the last layer alone on
            all four streams measured, docs/strategies.md "Features from every layer"),
            "last", or a list of indices (0 = embeddings, -1 = last).

    State: class sums and counts, plus one d x d second moment ("shared"; under APER one
    (d/2) x (d/2) per source unless across_sources) or one per class ("class"):
    (C d + d^2) or (C d + C d^2) floats, d being the feature width times
    the number of layers (MiniLM, all 6 layers: d = 2304, d^2 = 5.3 M; with "class"
    covariances pass layers="last" unless C d^2 floats fit your memory).
    """

    name = "fecam"
    STATS = ("counts", "sums", "moments")

    def __init__(
        self,
        covariance: str = "shared",
        shrink: float = 0.5,
        layers: LayerSpec = "all",
        across_sources: bool = False,
    ) -> None:
        super().__init__(layers)
        if covariance not in COVARIANCES:
            raise ConfigError(
                f"FeCAM covariance must be one of {', '.join(COVARIANCES)}, got {covariance!r}."
            )
        if not 0 < shrink <= 1:
            raise ConfigError(f"FeCAM shrink must be in (0, 1], got {shrink!r}.")
        self.covariance = covariance
        self.shrink = shrink
        self.across_sources = bool(across_sources)

    @property
    def _blocks(self) -> int:
        """Independent diagonal blocks of the shared covariance: one per feature source."""
        split = self.covariance == "shared" and not self.across_sources
        return 2 if split and self._pretrained_too else 1

    def _init(self, dim: int) -> None:
        super()._init(dim)
        c, k = self.num_classes, self._blocks
        self._stats["sums"] = torch.zeros(c, dim, dtype=torch.float64)
        if self.covariance == "class":
            shape: tuple[int, ...] = (c, dim, dim)
        elif k > 1:
            shape = (k, dim // k, dim // k)
        else:
            shape = (dim, dim)
        self._stats["moments"] = torch.zeros(*shape, dtype=torch.float64)

    def _accumulate(self, x: torch.Tensor, keys: torch.Tensor, held: torch.Tensor) -> None:
        self._stats["sums"].index_add_(0, keys, x)
        moments = self._stats["moments"]
        if self.covariance == "class":
            moments.index_add_(0, keys, x.unsqueeze(2) * x.unsqueeze(1))
        elif moments.dim() == 3:  # one block per source
            for b, part in enumerate(x.chunk(len(moments), dim=1)):
                moments[b] += part.T @ part
        else:
            moments += x.T @ x

    def load_state_dict(self, state: dict[str, Any]) -> None:
        moments = state.get("moments")
        if (
            self.covariance == "shared"
            and self._pretrained_too
            and isinstance(moments, torch.Tensor)
        ):
            # a head saved with one covariance over both sources (petl before the
            # per-source default, or across_sources=True) is rebuilt as it was fitted,
            # so that it predicts what it predicted when it was saved
            self.across_sources = moments.dim() == 2
        super().load_state_dict(state)

    def _shrunk(self, cov: torch.Tensor) -> torch.Tensor:
        d = cov.shape[-1]
        eye = torch.eye(d, dtype=cov.dtype)
        return (1 - self.shrink) * cov + self.shrink * (torch.trace(cov) / d) * eye

    def _solve(self) -> None:
        counts, sums = self._stats["counts"], self._stats["sums"]
        means = class_means(sums, counts)
        seen = counts > 0
        moments = self._stats["moments"]
        dof = max(float(counts.sum() - seen.sum()), 1.0)
        self._means = means
        if self.covariance == "shared":
            # LDA: x' P mu - mu' P mu / 2, P mu by a Cholesky solve (5x faster than the
            # inverse at the d = 4608 of APER on every MiniLM layer); with one block per
            # source, P is block-diagonal and each block is solved on its own
            blocks = moments if moments.dim() == 3 else moments.unsqueeze(0)
            weights = []
            for block, mu in zip(blocks, means.chunk(len(blocks), dim=1), strict=True):
                between = (mu.T * counts) @ mu  # sum_c n_c mu_c mu_c', no C d x d blocks
                weights.append(_spd_solve(self._shrunk((block - between) / dof), mu.T).T)
            self._weights = torch.cat(weights, 1)
            self._bias = -0.5 * (self._weights * means).sum(1)
            return
        between = (means.T * counts) @ means
        shared = self._shrunk((moments.sum(0) - between) / dof)
        outer = counts[:, None, None] * means.unsqueeze(2) * means.unsqueeze(1)  # n mu mu'
        covs = (moments - outer) / (counts - 1).clamp(min=1)[:, None, None]
        covs = 0.5 * covs + 0.5 * shared
        covs[~seen] = shared
        self._precisions = torch.linalg.inv(covs)
        self._logdets = torch.linalg.slogdet(covs).logabsdet

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        if self.covariance == "shared":
            return x @ self._weights.T + self._bias
        diff = x.unsqueeze(1) - self._means.unsqueeze(0)  # [N, C, d]
        maha = torch.einsum("ncd,cde,nce->nc", diff, self._precisions, diff)
        return -maha - self._logdets


def _spd_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a^-1 b for a symmetric positive definite `a` (a shrunk covariance is one whenever
    its trace is positive); a general solve when rounding broke the Cholesky factor."""
    factor, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(b, factor)
    return torch.linalg.solve(a, b)

"""APER (ADAM): adapt the backbone with the Learner's PEFT method on the first task(s),
then freeze it and classify with a statistic head on the adapted features, optionally
concatenated with the pretrained ones (Zhou et al., IJCV 2024, "Revisiting
Class-Incremental Learning with Pre-Trained Models: Generalizability and Adaptivity are
All You Need"; with a FeCAM head it is close to FeCAM with first-session adaptation,
Goswami et al., NeurIPS 2023; with a RanPAC head, to RanPAC's recipe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from petl.errors import ConfigError
from petl.strategies.base import Strategy
from petl.strategies.protocol import Capabilities
from petl.strategies.stat_heads import StatisticHead

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


def _heads() -> dict[str, type[StatisticHead]]:
    from petl.strategies.fecam import FeCAM
    from petl.strategies.ncm import NCM
    from petl.strategies.ranpac import RanPAC

    return {"ncm": NCM, "fecam": FeCAM, "ranpac": RanPAC}


class APER(Strategy):
    """First-session adaptation, then a statistic head.

    Tasks 0..adapt_tasks-1 train normally (the Learner's method, its TrainConfig, the
    model's own heads answer meanwhile). After task adapt_tasks-1 the backbone is frozen
    for good and the statistic head is fitted on the adapted features of every task seen
    (with adapt_tasks > 1 this re-reads those first tasks' training rows once); later tasks
    only add their statistics.

    Args:
        head: "fecam" (default: FeCAM's shared-covariance Mahalanobis head, the best or tied
            head on adapted + pretrained features in every stream measured, see
            docs/strategies.md; with pretrained features one covariance per source, state
            2 C d + 2 d^2 floats for d-wide features of each), "ranpac" or "ncm" (the
            paper's prototype head).
        adapt_tasks: Tasks trained by gradient before freezing (the paper adapts on the
            first task only).
        pretrained_features: Concatenate the pretrained (adapter-disabled) features with
            the adapted ones, as APER does; needs a peft method (adapters that can be
            switched off).
        head_options: Options of the head, e.g. {"shrink": 0.2} for FeCAM or {"dims": 4000}
            for RanPAC.
    """

    name = "aper"

    def __init__(
        self,
        head: str = "fecam",
        adapt_tasks: int = 1,
        pretrained_features: bool = True,
        head_options: dict[str, Any] | None = None,
    ) -> None:
        heads = _heads()
        if head not in heads:
            raise ConfigError(f"APER head must be one of {', '.join(sorted(heads))}, got {head!r}.")
        if not isinstance(adapt_tasks, int) or adapt_tasks < 0:
            raise ConfigError(f"APER adapt_tasks must be an integer >= 0, got {adapt_tasks!r}.")
        self.head = head
        self.adapt_tasks = adapt_tasks
        self.pretrained_features = pretrained_features
        self.head_options = dict(head_options or {})
        try:
            self._head = heads[head](**self.head_options)
        except TypeError as err:
            raise ConfigError(f"APER head_options for {head!r}: {err}.") from err
        self._head._pretrained_too = pretrained_features

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]  # per instance
        """Declared to the Learner: only the first `adapt_tasks` tasks train by gradient."""
        return Capabilities(gradient_tasks=self.adapt_tasks)

    def setup(self, learner: LearnerView) -> None:
        if self.pretrained_features and not hasattr(learner.model.backbone, "disable_adapter"):
            raise ConfigError(
                "APER(pretrained_features=True) needs a peft method whose adapters can be "
                f"switched off (e.g. method='lora'); got method={learner.method!r}. Pass "
                "pretrained_features=False to use the adapted features only."
            )
        self._head.setup(learner)

    def after_task(self, learner: LearnerView, t: int) -> None:
        last_adapted = max(self.adapt_tasks - 1, 0)
        if t < last_adapted:
            return
        for s in range(t + 1) if t == last_adapted else (t,):
            self._head.add_task(learner, s)
        self._head.solve()

    def predict(self, learner: LearnerView, t: int, split: str) -> np.ndarray | None:
        return self._head.predict(learner, t, split)

    def state_dict(self) -> dict[str, Any]:
        return self._head.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._head.load_state_dict(state)

    def state_floats(self) -> int:
        return self._head.state_floats()

    def head_passes(self) -> int:
        return self._head.head_passes()

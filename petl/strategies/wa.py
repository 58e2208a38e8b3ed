"""Weight Aligning (WA, Zhao et al. CVPR 2020, "Maintaining Discrimination and Fairness in
Class Incremental Learning"): after each task, the rows of the head that belong to the
task's new classes are rescaled so that their mean L2 norm equals the mean norm of the
rows of all earlier classes.

A head trained on new-class data ends with larger weight norms for the new classes, so
they win predictions on old examples. WA removes that bias with one scalar per task,
gamma = mean ||w_old|| / mean ||w_new||, applied to the new rows' weights and biases (the
new classes' logits scale by gamma; the paper's heads have no bias, and scaling it with
the weights keeps each new logit's shape). It runs in class-incremental streams (one
growing head); with per-task heads (task-incremental, TaskAdapters) or one shared label
set (domain-incremental) there is no old/new split inside a head and it changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from petl.errors import ConfigError
from petl.strategies.base import Strategy

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


@torch.no_grad()
def align_new_rows(heads: Any, t: int) -> float | None:
    """Rescales block t's rows of a concat head to the mean norm of blocks 0..t-1;
    returns gamma (None when there is nothing to align)."""
    if heads.mode != "concat" or t == 0 or not heads.block_sizes[t]:
        return None
    old = [heads.weights[k] for k in range(t) if heads.block_sizes[k]]
    if not old:
        return None
    old_norm = torch.cat([w.float().norm(dim=1) for w in old]).mean()
    new_norm = heads.weights[t].float().norm(dim=1).mean()
    if new_norm <= 0:
        return None
    gamma = float(old_norm / new_norm)
    heads.weights[t].mul_(gamma)
    heads.biases[t].mul_(gamma)
    return gamma


class WA(Strategy):
    """Weight aligning after each task: new classes' head rows to the old rows' mean norm.

    Composes with any other strategy: `strategies=[petl.LwF(), petl.WA()]`. The gamma of
    each task is kept in `gammas` (and in checkpoints) for inspection."""

    name = "wa"

    def __init__(self) -> None:
        self._gammas: list[float] = []

    @property
    def gammas(self) -> list[float]:
        """The scale applied after each task (1.0 where nothing was aligned)."""
        return list(self._gammas)

    def setup(self, learner: LearnerView) -> None:
        if getattr(learner.model, "heads", None) is None:
            raise ConfigError(
                f"WA rescales rows of petl's classification heads; the "
                f"{learner.family.name!r} family has none. Use it with the classification "
                "or tokens family."
            )
        self._gammas = []

    def after_task(self, learner: LearnerView, t: int) -> None:
        gamma = align_new_rows(learner.model.heads, t)
        self._gammas = [*self._gammas[:t], 1.0 if gamma is None else gamma]

    def state_dict(self) -> dict[str, Any]:
        return {"gammas": torch.tensor(self._gammas, dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        gammas = state.get("gammas")
        self._gammas = [] if gammas is None else [float(g) for g in gammas.tolist()]

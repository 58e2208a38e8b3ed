"""The strategy base class: no-op defaults of every hook (petl.strategies.protocol lists
them and says when the loop calls each), and Naive, the strategy that does nothing.

Subclassing `Strategy` is optional (any object with some hooks works) and carries no
behaviour: it documents the hooks, supplies defaults that the dispatcher skips, and gives
the `config()` echoed into results and checkpoint fingerprints. Hooks receive the
learner as a `LearnerView` (petl.training.seam): its public attributes and helpers
(model, stream, family, task_index, config, accelerator, rows, batches, ...) are all
they may use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from petl.strategies.protocol import Capabilities, no_op

if TYPE_CHECKING:
    from petl.training.seam import LearnerView


class Strategy:
    """No-op defaults of every hook; `name` keys the strategy's checkpoint part."""

    name = "strategy"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def config(self) -> dict[str, Any]:
        """The strategy's settings, echoed into results and checkpoint fingerprints."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @no_op
    def setup(self, learner: LearnerView) -> None:
        """Checks that the strategy fits the model and method (after the model is built)."""

    @no_op
    def before_task(self, learner: LearnerView, t: int) -> None:
        """Prepares for task t (snapshots, teachers)."""

    @no_op
    def train_items(self, learner: LearnerView, t: int, items: list[Any]) -> list[Any]:
        """The (task, example) items to train task t on; default: unchanged."""
        return items

    @no_op
    def loss(self, learner: LearnerView, batch: Any, logits: Any, loss: Any) -> Any:
        """The training loss with this strategy's terms added; default: unchanged."""
        return loss

    @no_op
    def before_step(self, learner: LearnerView) -> None:
        """Reads or rewrites the final gradients, before clipping and the optimizer step."""

    @no_op
    def after_step(self, learner: LearnerView) -> None:
        """After the optimizer step, gradients still present."""

    @no_op
    def after_task(self, learner: LearnerView, t: int) -> None:
        """Consolidates after task t (Fisher, buffers, adapters)."""

    @no_op
    def predict(self, learner: LearnerView, t: int, split: str) -> Any:
        """Predictions for task t's split, or None to use the family's rule."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Tensors and JSON values to checkpoint (see petl.strategies.state)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores `state_dict()`'s output (an empty dict: nothing saved yet)."""


class Naive(Strategy):
    """Sequential fine-tuning: train each task in turn, nothing kept. The lower bound."""

    name = "naive"

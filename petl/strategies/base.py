"""The strategy interface: a few hooks the training loop calls, all optional.

A strategy is any object with some of these methods (the loop looks them up by name, as
Avalanche's plugins are found). Subclassing `Strategy` only documents them and supplies
no-op defaults; it carries no behaviour. Hooks receive the `Learner`, whose public
attributes (model, stream, task_index, config, accelerator) are all they may use.

Hooks, in the order the loop calls them:
    setup(learner)                          check that the strategy fits the model/method
    before_task(learner, t)                 prepare for task t (snapshots, teachers)
    train_items(learner, t, items) -> items the (task, example) pairs to train task t on
    train_logits(learner, batch, logits) -> logits   change the logits the training loss sees
    loss(learner, batch, logits, loss) -> loss   add a penalty or a distillation term
    after_step(learner)                     after each optimizer step
    after_task(learner, t)                  consolidate (Fisher, buffers, adapters)
    predict(learner, t, split) -> preds | None   override how task t is predicted
    state_dict() / load_state_dict(state)   tensors and JSON values, for checkpoints

Declared attributes (read when the model or optimizer is built, so resumed runs match):
    per_task_heads, freeze_old_heads        head layout (see petl.heads)
    lr_scales: {name prefix: multiplier}    learning-rate groups (petl.training.param_groups)
"""

from __future__ import annotations

from typing import Any


class Strategy:
    """No-op defaults of every hook; `name` keys the strategy's checkpoint part."""

    name = "strategy"

    def config(self) -> dict[str, Any]:
        """The strategy's settings, echoed into results and checkpoint fingerprints."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class Naive(Strategy):
    """Sequential fine-tuning: train each task in turn, nothing kept. The lower bound."""

    name = "naive"

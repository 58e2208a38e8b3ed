"""The strategy protocol and its one dispatcher.

A strategy is any object with some of the hooks below (duck-typed, as Avalanche finds its
plugins). `Hooks` is the only place that looks hooks up: it checks every strategy once,
when it is added (a public method that looks like a misspelt hook is an error, not a
silently ignored one), and then calls them for the loop and the Learner.

Hooks, in the order the loop calls them (all optional):
    setup(learner)                          check that the strategy fits the model/method
    before_task(learner, t)                 prepare for task t (snapshots, teachers)
    train_items(learner, t, items) -> items the (task, example) pairs to train task t on
    train_logits(learner, batch, logits) -> logits   the logits the training loss sees
    loss(learner, batch, logits, loss) -> loss   add a penalty or a distillation term
    before_step(learner)                    gradients are final (after backward, unscaling
                                            and the all-reduce), before clipping and the step:
                                            read or project them (SI, A-GEM, GEM)
    after_step(learner)                     after the optimizer step, before the gradients
                                            are cleared
    after_task(learner, t)                  consolidate (Fisher, buffers, adapters)
    predict(learner, t, split) -> preds | None   override how task t is predicted
    state_dict() / load_state_dict(state)   tensors and JSON values, for checkpoints

What a strategy needs from the model is declared, not probed: `capabilities`, a
`Capabilities` value, read before the model is built and whenever heads are activated.
PEFT methods may contribute hooks too (`method_hooks`): AdaLoRA's rank budget step is one,
owned by the method rather than written into the generic loop. A strategy may also declare
`lr_scales` ({parameter-name prefix: lr multiplier}, read by petl.training.param_groups)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from petl.errors import ConfigError

if TYPE_CHECKING:
    from petl.training.seam import LearnerView

HOOKS = (
    "setup",
    "before_task",
    "train_items",
    "train_logits",
    "loss",
    "before_step",
    "after_step",
    "after_task",
    "predict",
    "state_dict",
    "load_state_dict",
)
LEGACY_FLAGS = ("per_task_heads", "freeze_old_heads", "gradient_tasks")


@dataclass(frozen=True)
class Capabilities:
    """What a strategy needs from the model, declared on its class.

    Attributes:
        per_task_heads: Give every task its own head block, chosen by task id (or by the
            strategy's own `predict`), even in class-incremental streams.
        freeze_old_heads: Train only the current task's head block; earlier blocks still
            score but stay frozen (declared, so a resumed run gets the same trainable set).
        gradient_tasks: Train task t by gradient only while t < gradient_tasks (None:
            always). Statistic heads declare 0 (they never take an optimizer step); APER
            declares its `adapt_tasks`. With several strategies the smallest limit wins.
    """

    per_task_heads: bool = False
    freeze_old_heads: bool = False
    gradient_tasks: int | None = None


def strategy_name(strategy: Any) -> str:
    """The key of a strategy's settings and checkpoint part."""
    return str(getattr(strategy, "name", type(strategy).__name__))


def check_strategy(strategy: Any) -> None:
    """Raises ConfigError if a public method of `strategy` looks like a hook but is not one
    (`after_tasks`, `befor_step`, `los`): such a method would never be called."""
    for attr in dir(strategy):  # the instance's too: a flag set in __init__ is refused
        if attr.startswith("_") or attr in HOOKS:
            continue
        if attr in LEGACY_FLAGS:
            value = getattr(strategy, attr, True)
            raise ConfigError(
                f"Strategy {strategy_name(strategy)!r} sets {attr!r}; declare it as "
                f"`capabilities = Capabilities({attr}={value!r})` (petl.strategies.protocol)."
            )
        if not callable(getattr(type(strategy), attr, None)):
            continue
        close = difflib.get_close_matches(attr, HOOKS, n=1, cutoff=0.8)
        if close or attr.startswith(("before_", "after_", "on_")):
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"Strategy {strategy_name(strategy)!r} has a method {attr!r} that looks like "
                f"a hook but is not one{hint}; it would never be called. Valid hooks: "
                f"{', '.join(HOOKS)}. Rename it, or make it private (_{attr})."
            )


def no_op(fn: Any) -> Any:
    """Marks a hook as a no-op default (the `Strategy` base's), which the dispatcher skips."""
    fn.petl_no_op = True
    return fn


def _overrides(strategy: Any, hook: str) -> bool:
    """True if `strategy` has `hook` and it is not a no-op default."""
    fn = getattr(type(strategy), hook, None) or getattr(strategy, hook, None)
    return fn is not None and not getattr(fn, "petl_no_op", False)


class Hooks:
    """Calls the hooks of a fixed list of strategies (and of the PEFT method), in order.

    Args:
        strategies: The strategies, checked here (see `check_strategy`); names must be
            unique (each keys a checkpoint part).
    """

    def __init__(self, strategies: Sequence[Any]) -> None:
        self.strategies = list(strategies)
        names = [strategy_name(s) for s in self.strategies]
        if len(set(names)) != len(names):
            raise ConfigError(f"Each strategy may appear once; got {names}.")
        for s in self.strategies:
            check_strategy(s)
        self.method: list[Any] = []  # hooks of the PEFT method, after the strategies'

    def _with(self, hook: str) -> list[Any]:
        return [s for s in [*self.strategies, *self.method] if _overrides(s, hook)]

    def has(self, hook: str) -> bool:
        """True if some strategy or method implements `hook`."""
        return bool(self._with(hook))

    def call(self, hook: str, learner: LearnerView, *args: Any) -> None:
        """Calls a hook without a result (setup, before/after task, before/after step)."""
        for s in self._with(hook):
            getattr(s, hook)(learner, *args)

    def train_items(self, learner: LearnerView, t: int, items: list[Any]) -> list[Any]:
        for s in self._with("train_items"):
            items = s.train_items(learner, t, items)
        return items

    def train_logits(self, learner: LearnerView, batch: Any, logits: Any) -> Any:
        """The logits the training loss sees (MaskSeen hides other tasks' classes)."""
        for s in self._with("train_logits"):
            logits = s.train_logits(learner, batch, logits)
        return logits

    def loss(self, learner: LearnerView, batch: Any, logits: Any, loss: Any) -> Any:
        for s in self._with("loss"):
            loss = s.loss(learner, batch, logits, loss)
        return loss

    def predict(self, learner: LearnerView, t: int, split: str) -> Any:
        """The first strategy's prediction that is not None, else None."""
        for s in self._with("predict"):
            preds = s.predict(learner, t, split)
            if preds is not None:
                return preds
        return None

    def capability(self, flag: str) -> bool:
        """True if any strategy declares `flag` in its `capabilities`."""
        return any(getattr(getattr(s, "capabilities", None), flag, False) for s in self.strategies)

    def gradient_tasks(self) -> int | None:
        """How many tasks train by gradient: the smallest `gradient_tasks` any strategy
        declares in its `capabilities`, or None (every task)."""
        limits = [
            getattr(s, "capabilities", Capabilities()).gradient_tasks for s in self.strategies
        ]
        declared = [n for n in limits if n is not None]
        return min(declared) if declared else None

    def state_dicts(self) -> dict[str, dict[str, Any]]:
        """Checkpoint parts `strategy.<name>` of the strategies that keep state."""
        return {
            f"strategy.{strategy_name(s)}": s.state_dict()
            for s in self.strategies
            if hasattr(s, "state_dict")
        }

    def load_state_dicts(self, parts: dict[str, dict[str, Any]]) -> None:
        for s in self.strategies:
            if hasattr(s, "load_state_dict"):
                s.load_state_dict(parts.get(f"strategy.{strategy_name(s)}", {}))


def method_hooks(model: Any) -> list[Any]:
    """Hook objects the PEFT method inside `model` contributes (AdaLoRA's budget step)."""
    from petl.methods import training_hooks

    return training_hooks(model)

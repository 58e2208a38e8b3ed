"""Checks that a strategy's hooks ran and did something: a recording wrapper around every
hook a strategy overrides, and the effects each strategy of the catalog must leave.

A test that checks only the accuracy matrix's shape passes for a strategy whose hooks
never ran. `record(strategies)` swaps each strategy's class for a subclass whose
overridden hooks record every call (which hook, on which task, whether a fold changed its
input); after `fit`, `problems(strategies)` lists what is missing: a hook that never ran,
a loss term that never added anything on a later task, replayed examples that never
reached the training set, state that was never kept. An empty list means the hooks ran and
worked. The wrapper lives on a subclass, not on the instance, so `Strategy.config()` (the
instance's public attributes, echoed into results and checkpoint fingerprints) is
unchanged."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from petl.strategies.protocol import HOOKS
from petl.strategies.state import unpack

CALLED = tuple(h for h in HOOKS if h not in ("state_dict", "load_state_dict"))


@dataclass
class Call:
    """One hook call: `changed` says whether a fold changed its input (None: not a fold)."""

    hook: str
    task: int
    changed: bool | None = None


@dataclass
class Log:
    calls: list[Call] = field(default_factory=list)

    def ran(self, hook: str) -> bool:
        return any(c.hook == hook for c in self.calls)

    def changed(self, hook: str, after_task: int = 0) -> bool:
        """True if `hook` changed its input on some task later than `after_task`."""
        return any(c.hook == hook and c.task > after_task and c.changed for c in self.calls)


def _overridden(strategy: Any, hook: str) -> bool:
    fn = getattr(type(strategy), hook, None)
    return fn is not None and not getattr(fn, "petl_no_op", False)


def _effect(hook: str, args: tuple[Any, ...], out: Any) -> bool | None:
    if hook == "loss":  # args (batch, logits, loss): a term was added
        return bool((out.detach() - args[2].detach()).item() > 0)
    if hook == "train_items":  # args (t, items): examples of earlier tasks joined
        return any(k < args[0] for k, _ in out)
    if hook == "predict":  # args (t, split): the strategy answered
        return out is not None
    return None


def _recording(fn: Callable[..., Any], hook: str, log: Log) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Any, learner: Any, *args: Any) -> Any:
        out = fn(self, learner, *args)
        log.calls.append(Call(hook, learner.task_index, _effect(hook, args, out)))
        return out

    return wrapper


def record(strategies: list[Any]) -> list[Any]:
    """Makes every overridden hook of `strategies` record its calls (in place); returns
    the same list, for `Learner(strategies=record([...]))`."""
    for s in strategies:
        log = Log()
        hooks = {h: _recording(getattr(type(s), h), h, log) for h in CALLED if _overridden(s, h)}
        s.__class__ = type(type(s).__name__, (type(s),), {**hooks, "_hook_log": log})
    return strategies


def _positive(tensors: dict[str, torch.Tensor]) -> bool:
    return bool(tensors) and sum(float(t.sum()) for t in tensors.values()) > 0


def _lwf_teacher(state: dict[str, Any]) -> bool:
    # classification keeps the teacher's logits; token and generation families keep the
    # pre-task weights and run them as the teacher
    return state["task"] == 1 and (state["teacher"] is not None or bool(state["snapshot"]))


# What a 2-task fit must leave, per strategy name: (hook whose fold must change its input
# on task 1, check of the state after fit, what that check means).
EFFECTS: dict[str, tuple[str | None, Callable[[dict[str, Any]], bool], str]] = {
    "ewc": (
        "loss",
        lambda s: (
            len(unpack(s, {"fisher": []})["fisher"]) == 2
            and all(_positive(f) for f in unpack(s, {"fisher": []})["fisher"])
        ),
        "a positive Fisher kept per task",
    ),
    "replay": (
        "train_items",
        lambda s: {k for k, _ in s.get("items", [])} == {0, 1},
        "buffered examples of both tasks",
    ),
    "lwf": (
        "loss",
        lambda s: _lwf_teacher(unpack(s, {"task": -1, "teacher": None, "snapshot": {}})),
        "teacher of task 1 (its logits, or the weights it ran with)",
    ),
    "task_adapters": (
        "predict",
        lambda s: len(unpack(s, {"store": []})["store"]) == 2,
        "one stored adapter per task",
    ),
    "olora": (
        "loss",
        lambda s: len(unpack(s, {"past": []})["past"]) == 2,
        "one merged LoRA subspace per task",
    ),
    "joint": ("train_items", lambda s: True, "nothing"),
}


def problems(strategies: list[Any]) -> list[str]:
    """What the recorded strategies failed to do in a 2-task fit (empty: nothing)."""
    out = []
    for s in strategies:
        log: Log = type(s)._hook_log
        out += [f"{s.name}.{h} never ran" for h in CALLED if _overridden(s, h) and not log.ran(h)]
        if s.name not in EFFECTS:
            continue
        hook, kept, meaning = EFFECTS[s.name]
        if hook is not None and not log.changed(hook):
            out.append(f"{s.name}.{hook} never changed its input on task 1")
        if not kept(s.state_dict()):
            out.append(f"{s.name} kept no {meaning} after fit")
    return out

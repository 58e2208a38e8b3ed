"""The hook checks of test_family_strategies.py fail when a strategy's hook is broken: each
case turns one hook into a no-op (or stops the loop from calling it), fits a 2-task token
stream, and expects `problems` to name what is missing. Without these, a checker that
always said "fine" would pass unnoticed."""

from __future__ import annotations

from typing import Any

import pytest

import petl
from petl.strategies.protocol import Hooks
from tests.families.family_data import ner_stream
from tests.families.test_family_strategies import tokens_learner
from tests.hook_checks import problems, record


def _skip_hook(hook: str) -> Any:
    call = Hooks.call

    def skipping(self: Hooks, name: str, learner: Any, *args: Any) -> None:
        if name != hook:  # the loop "forgets" this one hook
            call(self, name, learner, *args)

    return skipping


BREAKS = {
    # Replay's buffer is filled after each task: never filled, nothing is replayed
    "replay_after_task_no_op": (
        lambda: [petl.Replay(memory=8)],
        (petl.Replay, "after_task", lambda self, learner, t: None),
        ["replay.train_items never changed its input on task 1", "replay kept no buffered"],
    ),
    # EWC's penalty returns the loss unchanged
    "ewc_loss_no_op": (
        lambda: [petl.EWC(lam=100.0, fisher_samples=8)],
        (petl.EWC, "loss", lambda self, learner, batch, logits, loss: loss),
        ["ewc.loss never changed its input on task 1"],
    ),
    # the loop never calls before_task: LwF has no teacher
    "lwf_before_task_not_called": (
        lambda: [petl.LwF()],
        (Hooks, "call", _skip_hook("before_task")),
        ["lwf.before_task never ran", "lwf.loss never changed", "lwf kept no teacher"],
    ),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_hook_is_caught(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, (owner, attr, broken), expected = BREAKS[case]
    monkeypatch.setattr(owner, attr, broken)
    strategies = record(make())
    tokens_learner(strategies).fit(ner_stream(n_train=8, n_test=4))
    found = problems(strategies)
    for text in expected:
        assert any(p.startswith(text) for p in found), (text, found)


def test_the_unbroken_hooks_pass_on_the_same_stream() -> None:
    # the control of the cases above: same strategies and stream, nothing broken
    strategies = record([make()[0] for make, _, _ in BREAKS.values()])
    tokens_learner(strategies).fit(ner_stream(n_train=8, n_test=4))
    assert problems(strategies) == []

"""The strategy protocol: hook names are checked when a strategy is added, `before_step`
sees the final gradients before clipping, `after_step` runs before they are cleared,
state_dict is optional, capabilities are declared, and strategy state round-trips."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import petl
from petl.errors import ConfigError
from petl.strategies.protocol import HOOKS, Capabilities, Hooks
from petl.strategies.state import pack, unpack
from tests.cl.cl_data import make_bert


class Misspelt(petl.Strategy):
    name = "misspelt"

    def after_tasks(self, learner: Any, t: int) -> None:  # never called: an error
        pass


class Legacy:
    name = "legacy"
    freeze_old_heads = True


class LegacyLimit(petl.Strategy):
    name = "legacy_limit"

    def __init__(self) -> None:
        self.gradient_tasks = 0  # set per instance: refused too


class Helper(petl.Strategy):
    """Public non-hook methods (penalty, buffer) are fine."""

    name = "helper"

    def penalty(self) -> float:
        return 0.0


@pytest.mark.parametrize("strategy", [Misspelt(), Legacy(), LegacyLimit()])
def test_misspelt_hooks_and_undeclared_flags_are_refused(strategy: Any) -> None:
    with pytest.raises(ConfigError) as err:
        Hooks([strategy])
    message = str(err.value)
    assert strategy.name in message
    if isinstance(strategy, Misspelt):
        assert "'after_task'" in message and all(h in message for h in HOOKS)
    elif isinstance(strategy, Legacy):
        assert "Capabilities(freeze_old_heads=True)" in message
    else:
        assert "Capabilities(gradient_tasks=0)" in message


def test_learner_checks_strategies_when_built(tok: Any) -> None:
    with pytest.raises(ConfigError, match="after_tasks"):
        petl.Learner(make_bert(), tok, strategies=[Misspelt()])
    Hooks([Helper(), petl.EWC()])  # no error


class Grads:
    """Duck-typed (no base class, no state_dict): records gradient norms at both hooks."""

    name = "grads"

    def __init__(self) -> None:
        self.before: list[float] = []
        self.after: list[bool] = []

    def before_step(self, learner: Any) -> None:
        grads = [p.grad for p in learner.trainable_parameters().values() if p.grad is not None]
        self.before.append(torch.norm(torch.stack([g.norm() for g in grads])).item())

    def after_step(self, learner: Any) -> None:
        params = learner.trainable_parameters().values()
        self.after.append(any(p.grad is not None for p in params))


def test_before_step_sees_unclipped_gradients_and_after_step_sees_them_too(
    tok: Any, records: Any, tmp_path: Any
) -> None:
    grads = Grads()
    learner = petl.Learner(
        make_bert(),
        tok,
        strategies=[grads],
        config=petl.TrainConfig(
            epochs=1, batch_size=8, max_grad_norm=1e-3, progress=False, checkpoint_every=2
        ),
    )
    # a duck-typed strategy without state_dict checkpoints fine
    learner.fit(petl.Stream.from_records(records), checkpoint_dir=str(tmp_path))
    assert len(grads.before) == len(grads.after) == learner.global_step == 6
    assert min(grads.before) > 1e-3  # seen before clipping to norm 1e-3
    assert all(grads.after)


def test_capabilities_are_read_from_the_declaration() -> None:
    class Routed(petl.Strategy):
        name = "routed"
        capabilities = Capabilities(per_task_heads=True)

    hooks = Hooks([Routed(), petl.EWC()])
    assert hooks.capability("per_task_heads") and not hooks.capability("freeze_old_heads")
    assert Hooks([petl.TaskAdapters()]).capability("freeze_old_heads")
    # gradient_tasks: the smallest declared limit; None when no strategy declares one
    assert Hooks([petl.EWC()]).gradient_tasks() is None
    assert Hooks([petl.APER(head="ncm", adapt_tasks=2)]).gradient_tasks() == 2
    assert Hooks([petl.APER(head="ncm", adapt_tasks=2), petl.NCM()]).gradient_tasks() == 0


def test_base_no_op_defaults_are_skipped() -> None:
    # the loop unscales gradients for before_step only if some strategy implements it
    assert not Hooks([petl.Naive(), petl.EWC()]).has("before_step")
    assert Hooks([petl.Naive(), petl.SI()]).has("before_step")
    assert Hooks([Grads()]).has("after_step") and not Hooks([Grads()]).has("loss")


def test_state_round_trips_through_a_checkpoint(tmp_path: Any) -> None:
    from petl.training import checkpoint as ckpt

    gen = torch.Generator().manual_seed(0)
    value = {
        "terms": [({"a.weight": torch.randn(2, 3, generator=gen)}, {"a.weight": torch.ones(2)})],
        "task": 3,
        "teacher": None,
        "items": [[0, 1], [1, 5]],
    }
    ckpt.write(str(tmp_path), {"strategy.x": pack(value)})
    back = unpack(ckpt.read(str(tmp_path))["strategy.x"], {"task": -1, "extra": 7})
    # bit-identity: safetensors stores the tensors unchanged
    assert torch.equal(back["terms"][0][0]["a.weight"], value["terms"][0][0]["a.weight"])
    assert back["task"] == 3 and back["teacher"] is None and back["items"] == [[0, 1], [1, 5]]
    assert back["extra"] == 7  # missing keys take the default
    assert unpack({}, {"task": -1}) == {"task": -1}

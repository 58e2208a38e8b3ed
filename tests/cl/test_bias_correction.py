"""Head-bias corrections for trained heads: MaskSeen (each example's loss over its own
task's classes) and WA (new classes' head rows rescaled to the old rows' mean norm).
They compose with any strategy, beat sequential fine-tuning on a constructed
class-incremental stream, change nothing where heads are per task or shared, and resume."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import petl
from petl.strategies.base import Strategy
from tests.cl.test_resume import Kill, Killed, assert_same, weights
from tests.cl.test_slca import GROUPS, learner, stream


class HeadSnapshots(Strategy):
    """Keeps a copy of every head block after each task (after the others' after_task)."""

    name = "head_snapshots"

    def __init__(self) -> None:
        self._after: list[list[torch.Tensor]] = []

    def config(self) -> dict[str, Any]:
        return {}

    def after_task(self, learner: Any, t: int) -> None:
        self._after.append([w.detach().clone() for w in learner.model.heads.weights])


@pytest.mark.slow  # two 4-task runs
def test_mask_seen_beats_naive_and_leaves_old_rows_untouched(tok: Any) -> None:
    snaps = HeadSnapshots()
    masked = learner(tok, [petl.MaskSeen(), snaps]).fit(stream())
    naive = learner(tok, [petl.Naive()]).fit(stream())
    # measured: naive 0.28 (only the last task right), MaskSeen 0.48
    assert masked.accuracy[-1].mean() > naive.accuracy[-1].mean() + 0.1
    # new data never reaches an old class's row: its gradient is exactly 0, so AdamW's
    # update is exactly 0 (bit-identity is the property here)
    for t in range(1, len(GROUPS)):
        for k in range(t):
            # old rows get exactly zero gradient: not one bit may move
            assert torch.equal(snaps._after[t][k], snaps._after[t - 1][k]), (t, k)


@pytest.mark.slow  # two 4-task runs
def test_wa_aligns_new_rows_to_the_old_mean_norm(tok: Any) -> None:
    wa = petl.WA()
    lrn = learner(tok, [petl.MaskSeen(), wa])
    res = lrn.fit(stream())
    naive = learner(tok, [petl.Naive()]).fit(stream())
    assert res.accuracy[-1].mean() > naive.accuracy[-1].mean() + 0.1
    heads = lrn.model.heads
    norms = [w.detach().norm(dim=1).mean() for w in heads.weights]
    # after the last task its rows have the mean norm of all earlier rows
    old = torch.cat([w.detach().norm(dim=1) for w in heads.weights[:-1]]).mean()
    torch.testing.assert_close(norms[-1], old, rtol=1e-5, atol=0)
    assert wa.gammas[0] == 1.0 and len(wa.gammas) == len(GROUPS)
    assert all(g != 1.0 for g in wa.gammas[1:])


@pytest.mark.parametrize("scenario", ["task", "domain"])
def test_nothing_to_correct_with_per_task_or_shared_heads(tok: Any, scenario: str) -> None:
    groups = [[0, 1], [2, 3]] if scenario == "task" else [[0, 1], [0, 1]]
    plain = learner(tok, [petl.Naive()]).fit(stream(scenario, groups))
    corrected = learner(tok, [petl.MaskSeen(), petl.WA()]).fit(stream(scenario, groups))
    # the mask keeps every column of a task's own head and there is no old/new split
    # inside a head: the same computation, so the same numbers bit for bit
    assert corrected.accuracy.tolist() == plain.accuracy.tolist()


@pytest.mark.parametrize(
    "make",
    [
        lambda: [petl.EWC(lam=10.0, fisher_samples=8), petl.MaskSeen(), petl.WA()],
        lambda: [petl.LwF(), petl.MaskSeen(), petl.WA()],
        lambda: [petl.Replay(memory=8), petl.MaskSeen()],
        lambda: [petl.OLoRA(lam_orth=0.1, lam_l2=0.01), petl.WA()],
        lambda: [petl.TaskAdapters(), petl.MaskSeen(), petl.WA()],
    ],
    ids=["ewc", "lwf", "replay", "olora", "task_adapters"],
)
def test_composes_with_every_strategy(tok: Any, make: Any) -> None:
    res = learner(tok, make(), epochs=1).fit(stream("class", GROUPS[:2]))
    assert res.accuracy.shape == (2, 2)
    assert res.accuracy[-1, -1] > 0.5  # the last task is learned


def test_resume_mid_second_task_equals_uninterrupted(tok: Any, tmp_path: Any) -> None:
    def run(kill: Kill, ckpt: str | None) -> tuple[Any, Any]:
        lrn = learner(tok, [petl.MaskSeen(), petl.WA(), kill], checkpoint_every=4)
        res = lrn.fit(stream("class", GROUPS[:3]), checkpoint_dir=ckpt)
        return res, weights(lrn)

    want = run(Kill(), None)
    ckpt = str(tmp_path / "run")
    with pytest.raises(Killed):
        run(Kill(step=30), ckpt)  # task 2 runs steps 25-36; last checkpoint at step 28
    assert_same(run(Kill(), ckpt), want)


def test_heads_are_needed() -> None:
    from types import SimpleNamespace

    fake = SimpleNamespace(model=SimpleNamespace(), family=SimpleNamespace(name="generation"))
    for strategy in (petl.MaskSeen(), petl.WA()):
        with pytest.raises(petl.ConfigError, match="generation"):
            strategy.setup(fake)

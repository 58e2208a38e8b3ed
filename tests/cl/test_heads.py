"""Dynamic heads and the trainable set: label ids per scenario, the expanding head of
class-incremental streams, per-task routing, and what one task's training may change."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.testing import assert_close

import petl
from petl.heads import TaskHeads
from tests.cl.cl_data import make_bert, split_records


def test_concat_heads_expand_and_keep_old_rows() -> None:
    heads = TaskHeads(4, [2, 0, 3])
    features = torch.randn(5, 4)
    heads.activate(0)
    assert heads(features).shape == (5, 2)
    assert [p.requires_grad for p in heads.weights] == [True, False, False]
    heads.activate(2)
    out = heads(features)
    assert out.shape == (5, 5)  # the empty block adds no column
    # Same rows through a differently shaped matmul: equal up to float rounding.
    assert_close(out[:, :2], heads.block(features, 0), rtol=1e-6, atol=1e-6)
    assert [p.requires_grad for p in heads.weights] == [True, True, True]
    heads.activate(2, freeze_old=True)  # TaskAdapters: only the current block trains
    assert [p.requires_grad for p in heads.weights] == [False, False, True]
    assert heads.columns(range(2, 3)) == [2, 3, 4]


def test_route_heads_score_each_example_with_its_task_head() -> None:
    heads = TaskHeads(4, [2, 3], mode="route")
    heads.activate(1)
    features = torch.randn(4, 4)
    task_ids = torch.tensor([0, 1, 1, 0])
    out = heads(features, task_ids)
    assert out.shape == (4, 3)
    # A 4-row and a 1-row matmul take different kernels: compare with a tolerance.
    assert_close(out[0, :2], heads.block(features[:1], 0)[0], rtol=1e-6, atol=1e-6)
    assert out[0, 2] == float("-inf")
    assert_close(out[1], heads.block(features[1:2], 1)[0], rtol=1e-6, atol=1e-6)
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([1, 2, 0, 0]))
    loss.backward()  # -inf padding columns give finite losses and gradients
    assert torch.isfinite(loss) and all(torch.isfinite(w.grad).all() for w in heads.weights)
    with pytest.raises(ValueError, match="task id"):
        heads(features)


@pytest.mark.parametrize("scenario", ["class", "task"])
def test_label_ids_and_head_sizes(tok: Any, scenario: str) -> None:
    stream = petl.Stream.from_records(
        split_records([[0, 1], [2, 3, 4]], 6, 3), scenario=scenario, val_fraction=0
    )
    learner = petl.Learner(make_bert(), tok, config=petl.TrainConfig(progress=False))
    learner.setup(stream)
    heads = learner.model.heads
    labels_1 = {r.label for r in learner.rows(1)}
    if scenario == "class":  # one growing label space: task 1's classes come after task 0's
        assert heads.mode == "concat" and heads.block_sizes == [2, 3]
        assert labels_1 == {2, 3, 4}
    else:  # each task's own head, ids in its own label order
        assert heads.mode == "route" and heads.block_sizes == [2, 3]
        assert labels_1 == {0, 1, 2} and {r.task for r in learner.rows(1)} == {1}


def test_training_changes_only_the_trainable_set(tok: Any) -> None:
    stream = petl.Stream.from_records(split_records([[0, 1], [2, 3]], 16, 4), val_fraction=0)
    learner = petl.Learner(
        make_bert(seed=4),
        tok,
        method="lora",
        method_options={"r": 2},
        config=petl.TrainConfig(epochs=1, batch_size=8, lr=1e-2, progress=False),
    )
    learner.setup(stream)
    before = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    learner.fit(stream)
    after = dict(learner.model.named_parameters())
    # Frozen parameters must keep every bit (no update at all), so exact comparison.
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed, "nothing trained"
    assert all("lora_" in n or n.startswith("heads.") for n in changed), sorted(changed)
    assert any("lora_B" in n for n in changed)  # LoRA B starts at 0: it must have moved
    assert {"heads.weights.0", "heads.weights.1"} <= changed  # both blocks, both tasks


def test_a_model_object_is_built_on_once(tok: Any) -> None:
    stream = petl.Stream.from_records(split_records([[0, 1]], 8, 4), val_fraction=0)
    learner = petl.Learner(make_bert(), tok, config=petl.TrainConfig(epochs=1, progress=False))
    learner.fit(stream)
    with pytest.raises(petl.ConfigError, match="fresh model"):
        learner.fit(stream)

"""The model's own pooler is frozen when the heads read pooled hidden states: BERT's
pooler (dense + tanh over [CLS]) feeds only its classification head, so under "mean"
pooling it gets no gradient; trainable, it would reach AdamW for nothing and make DDP
fail with "parameters that did not receive grad" (full fine-tuning of MiniLM)."""

from __future__ import annotations

from typing import Any

import pytest

import petl
from petl.training.param_groups import param_groups
from tests.cl.cl_data import make_bert, split_records


def _learner(tok: Any, pooling: str) -> petl.Learner:
    lrn = petl.Learner(
        make_bert(seed=0),
        tok,
        method=None,  # full fine-tuning: every other weight trains
        config=petl.TrainConfig(epochs=1, batch_size=8, progress=False, pooling=pooling),
    )
    records = split_records([[0, 1]], n_train=8, n_test=4, seed=0)
    lrn.setup(petl.Stream.from_records(records, scenario="class", val_fraction=0))
    return lrn


def _optimized(lrn: petl.Learner) -> set[int]:
    """ids of the tensors the task's AdamW gets (a plain list: no lr scales declared)."""
    return {id(p) for p in param_groups(lrn, 1e-3)}


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_pooled_features_freeze_the_unused_pooler(tok: Any, pooling: str) -> None:
    lrn = _learner(tok, pooling)
    named = dict(lrn.model.named_parameters())
    pooler = [n for n in named if ".pooler." in n]
    assert pooler  # BERT has one: the check below is not vacuous
    trainable = lrn.trainable_parameters()
    assert not any(n in trainable for n in pooler)
    assert not any(id(named[n]) in _optimized(lrn) for n in pooler)
    # every other backbone weight still trains (full fine-tuning; heads turn on per task)
    assert all(
        named[n].requires_grad for n in named if n.startswith("backbone.") and n not in pooler
    )


def test_head_pooling_keeps_the_pooler_trainable(tok: Any) -> None:
    lrn = _learner(tok, "head")  # the pooler's output is what the heads see
    trainable = lrn.trainable_parameters()
    pooler = [n for n in dict(lrn.model.named_parameters()) if ".pooler." in n]
    assert pooler and all(n in trainable for n in pooler)
    assert all(id(trainable[n]) in _optimized(lrn) for n in pooler)

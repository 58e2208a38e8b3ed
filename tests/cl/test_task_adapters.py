"""TaskAdapters: routing by task id, and the confidence rule used without task ids (each
adapter scores an example with its own head; the most confident adapter answers)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import petl
from petl.families.classification import ClassificationFamily, Encoded

# Probabilities each adapter's own head gives the 3 test examples of task 0 (labels 0, 1, 1).
PROBS = {
    0: [[0.90, 0.10], [0.60, 0.40], [0.20, 0.80]],
    1: [[0.70, 0.30], [0.05, 0.95], [0.50, 0.50]],
    2: [[0.50, 0.50], [0.50, 0.50], [0.10, 0.90]],  # the adapter being trained (task 2)
}
CLASS_LABELS = [["a", "b"], ["b", "c"], ["d", "e"]]


class OneParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.which = nn.Parameter(torch.zeros(()))  # stands in for an adapter's weights


def fake_learner(
    scenario: str,
    task_index: int,
    labels: list[list[str]] | None = None,
    probs: dict[int, list[list[float]]] | None = None,
) -> Any:
    labels = labels or (CLASS_LABELS if scenario == "class" else [["a", "b"]] * 3)
    probs = probs or PROBS
    recs = {
        f"t{k}": {
            "train": [{"text": "x", "label": lb} for lb in ls],
            "test": [{"text": "x", "label": lb} for lb in ls],
        }
        for k, ls in enumerate(labels)
    }
    stream = petl.Stream.from_records(recs, scenario=scenario, val_fraction=0)
    model = OneParam()
    rows = [Encoded([2, 3], None, y, 0) for y in (0, 1, 1)]

    def logits_for(batch: list[Any]) -> torch.Tensor:
        adapter = int(model.which.item())
        # task ids route to the task's own adapter and head; the rule uses each adapter's own
        assert {r.task for r in batch} == ({0} if scenario == "task" else {adapter})
        return torch.tensor(probs[adapter]).log()

    return SimpleNamespace(
        model=model,
        stream=stream,
        task_index=task_index,
        rows=lambda t, split: rows,
        trainable_parameters=lambda: {"which": model.which},
        logits_for=logits_for,
        family=ClassificationFamily(),
        per_task_heads=True,  # TaskAdapters' capability: each task its own head
    )


def adapters(learner: Any, stored: int) -> petl.TaskAdapters:
    strategy = petl.TaskAdapters()
    strategy._store = [{"which": torch.tensor(float(k))} for k in range(stored)]
    with torch.no_grad():
        learner.model.which.fill_(float(stored))  # the current adapter
    return strategy


def test_confidence_rule_class_incremental() -> None:
    learner = fake_learner("class", task_index=1)
    preds = adapters(learner, stored=2).predict(learner, 0, "test")
    # example 0: adapter 0 (0.90) says "a" -> 0; example 1: adapter 1 (0.95) says "c", which
    # is not a label of task 0 -> -1 (wrong); example 2: adapter 0 (0.80) says "b" -> 1.
    assert preds.tolist() == [0, -1, 1]
    assert learner.model.which.item() == 2.0  # the current adapter is back in place


def test_confidence_rule_maps_shared_labels() -> None:
    probs = {**PROBS, 1: [[0.70, 0.30], [0.97, 0.03], [0.50, 0.50]]}  # adapter 1 says "b"
    learner = fake_learner("class", task_index=1, probs=probs)
    assert adapters(learner, stored=2).predict(learner, 0, "test").tolist() == [0, 1, 1]


def test_confidence_is_rescaled_by_head_size() -> None:
    # Adapter 1 has 4 classes: p_max 0.5 is (0.5 - 1/4) / (3/4) = 0.33 confident, more than
    # adapter 0's 2-class 0.6 ((0.6 - 1/2) / (1/2) = 0.2), although 0.5 < 0.6.
    labels = [["a", "b"], ["b", "c", "d", "e"]]
    probs = {0: [[0.6, 0.4]] * 3, 1: [[0.5, 0.2, 0.2, 0.1]] * 3}
    learner = fake_learner("class", task_index=1, labels=labels, probs=probs)
    assert adapters(learner, stored=2).predict(learner, 0, "test").tolist() == [1, 1, 1]


def test_adapter_in_training_takes_part_in_validation() -> None:
    learner = fake_learner("class", task_index=2)  # task 2 training, 2 adapters stored
    # example 2: the current adapter (0.90 for "e") outbids adapter 0 -> -1 for task 0
    assert adapters(learner, stored=2).predict(learner, 0, "val").tolist() == [0, -1, -1]


def test_task_ids_route_to_the_task_adapter() -> None:
    learner = fake_learner("task", task_index=1)
    assert adapters(learner, stored=2).predict(learner, 0, "test").tolist() == [0, 0, 1]


# ---- prototype routing (route="prototype") on a tiny seeded BERT -----------------------
# Every class has its own tokens, so the frozen mean-pooled features tell the tasks apart:
# the router should send every test input to its own task's adapter.

ROUTE_CONFIG = {"epochs": 3, "batch_size": 8, "lr": 3e-2, "progress": False, "seed": 3}


def _routed_learner(tok: Any, route: str, *more: Any, **config: Any) -> petl.Learner:
    from tests.cl.cl_data import make_bert

    return petl.Learner(
        make_bert(seed=3),
        tok,
        method="lora",
        method_options={"r": 2},
        strategies=[petl.TaskAdapters(route=route), *more],
        config=petl.TrainConfig(**{**ROUTE_CONFIG, "pooling": "mean", **config}),
    )


def _stream() -> petl.Stream:
    from tests.cl.cl_data import split_records

    records = split_records([[0, 1], [2, 3], [4, 5]], n_train=30, n_test=12, seed=4)
    return petl.Stream.from_records(records, scenario="class", val_fraction=0)


@pytest.mark.slow  # trains two learners
def test_prototype_router_finds_each_inputs_task(tok: Any) -> None:
    lrn = _routed_learner(tok, "prototype")
    res = lrn.fit(_stream())
    router = lrn.strategies[0]
    hits = [(router.route_tasks(lrn, lrn.rows(t, "test")) == t).mean() for t in range(3)]
    assert min(hits) >= 0.75 and sum(hits) / 3 >= 0.9, hits  # measured 1.0, 0.83, 1.0
    confident = _routed_learner(tok, "confidence").fit(_stream())
    # measured 0.89 against 0.72: the router picks the right adapter more often
    assert res.accuracy[-1].mean() > confident.accuracy[-1].mean() + 0.1
    # Learner.predict without task= goes through the same router: label names of the task
    texts = [r["text"] for r in _stream_records()["t2"]["test"][:4]]
    assert set(lrn.predict(texts)) <= {"L4", "L5"}


def test_prototype_router_computes_each_evaluated_rows_features_once(tok: Any) -> None:
    lrn = _routed_learner(tok, "prototype", epochs=1)
    adapters = lrn.strategies[0]
    real, calls = adapters._pretrained_features, []

    def counted(learner: Any, rows: list) -> Any:
        calls.append(len(rows))
        return real(learner, rows)

    adapters._pretrained_features = counted  # type: ignore[method-assign]
    lrn.fit(_stream())
    # routed evaluations after tasks 0, 1 and 2 cover 3 test splits: one pass each
    assert sorted(adapters._features) == [(0, "test"), (1, "test"), (2, "test")]
    assert len(calls) == 3
    for (t, split), (cached_rows, cached) in adapters._features.items():
        rows = lrn.rows(t, split)
        assert cached_rows is rows
        fresh = adapters.route_tasks(lrn, rows)
        assert fresh is not None
        # task ids (integers) from the same feature code on the same rows: equal exactly
        np.testing.assert_array_equal(adapters.route_tasks(lrn, rows, cached), fresh)
    # other rows under the same (task, split) key (a new stream) are not served stale
    other = lrn.rows(0, "test")[:5]
    lrn._rows[0]["test"] = other
    before = len(calls)
    adapters.predict(lrn, 0, "test")
    assert len(calls) == before + 1 and adapters._features[0, "test"][0] is other


def _stream_records() -> dict[str, Any]:
    from tests.cl.cl_data import split_records

    return split_records([[0, 1], [2, 3], [4, 5]], n_train=30, n_test=12, seed=4)


def test_prototype_route_needs_switchable_adapters(tok: Any) -> None:
    from tests.cl.cl_data import make_bert

    lrn = petl.Learner(
        make_bert(seed=3),
        tok,
        method=None,  # full fine-tuning: no adapter to switch off
        strategies=[petl.TaskAdapters(route="prototype")],
        config=petl.TrainConfig(**ROUTE_CONFIG),
    )
    with pytest.raises(petl.ConfigError, match="route='confidence'"):
        lrn.fit(_stream())


def test_unknown_route_lists_the_known_ones() -> None:
    with pytest.raises(petl.ConfigError, match="confidence, prototype"):
        petl.TaskAdapters(route="oracle")


def test_prototype_router_resumes_after_a_kill(tok: Any, tmp_path: Any) -> None:
    from tests.cl.test_stat_heads import KillAfterTask

    ref = _routed_learner(tok, "prototype", KillAfterTask(), checkpoint_every=2)
    want = ref.fit(_stream())
    ckpt = str(tmp_path / "run")
    armed = _routed_learner(tok, "prototype", KillAfterTask(task=1), checkpoint_every=2)
    with pytest.raises(RuntimeError, match="killed"):
        armed.fit(_stream(), checkpoint_dir=ckpt)
    again = _routed_learner(tok, "prototype", KillAfterTask(), checkpoint_every=2)
    got = again.fit(_stream(), checkpoint_dir=ckpt)
    # the same computation resumed: bit-identity is the property
    assert got.accuracy.tolist() == want.accuracy.tolist()
    ref_router, got_router = ref.strategies[0]._router, again.strategies[0]._router
    for name, value in ref_router.state_dict().items():
        if isinstance(value, torch.Tensor):  # the same sums over the same rows
            assert torch.equal(got_router.state_dict()[name], value), name

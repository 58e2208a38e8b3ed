"""On small constructed streams where sequential fine-tuning (Naive) forgets strongly, each
strategy forgets clearly less, and Joint training (the upper bound) forgets least.

Which stream tests which strategy follows what each method is for:

- Class-incremental (disjoint classes, no task id at test): Replay. EWC is not asserted
  here: new classes get new head rows, which carry no Fisher and learn to fire on old
  inputs, so EWC forgets in class-incremental learning about as much as Naive does (van de
  Ven et al. 2022, "Three types of incremental learning"). The same holds for OLoRA, which
  protects the backbone, not the head.
- Task-incremental with interfering inputs (task ids given, forgetting through the shared
  backbone): EWC, OLoRA (its paper's setting: task-identified inputs, shared frozen
  output layer) and TaskAdapters (routed by task id: exactly no forgetting). TaskAdapters
  without task ids relies on its confidence rule, which has no guarantee on inputs of
  another task (an adapter can be confident on them); tests/cl/test_task_adapters.py
  checks that rule on its own. With 2 classes per task chance is 0.5, so task-incremental
  forgetting cannot exceed about 0.5; Naive reaches 0.3-0.45 here.

Numbers at the fixed seeds (model seed 0) are in docs/continual-learning.md."""

from __future__ import annotations

from typing import Any

import pytest

import petl
from tests.cl.cl_data import interference_records, make_bert, split_records

pytestmark = pytest.mark.slow  # trains every strategy on two constructed streams (~1 min)

MODEL_SEED = 0


def forgetting(
    tok: Any, stream: petl.Stream, strategies: list[Any], **config: Any
) -> tuple[float, Any]:
    learner = petl.Learner(
        make_bert(seed=MODEL_SEED),
        tok,
        method="lora",
        method_options={"r": 4},
        strategies=strategies,
        config=petl.TrainConfig(batch_size=16, progress=False, seed=0, **config),
    )
    results = learner.fit(stream)
    return results.summary()["forgetting"], results


@pytest.fixture(scope="module")
def class_il(tok: Any) -> dict[str, tuple[float, Any]]:
    stream = petl.Stream.from_records(split_records([[0, 1], [2, 3]], 48, 40), val_fraction=0)
    runs = {"naive": [], "replay": [petl.Replay(memory=24)], "joint": [petl.Joint()]}
    return {name: forgetting(tok, stream, s, epochs=10, lr=2e-2) for name, s in runs.items()}


@pytest.fixture(scope="module")
def task_il(tok: Any) -> dict[str, tuple[float, Any]]:
    stream = petl.Stream.from_records(interference_records(), scenario="task", val_fraction=0)
    runs = {
        "naive": [],
        "ewc": [petl.EWC(lam=1e3)],
        "olora": [petl.OLoRA(lam_orth=2.0)],
        "task_adapters": [petl.TaskAdapters()],
        "joint": [petl.Joint()],
    }
    return {name: forgetting(tok, stream, s, epochs=5, lr=3e-2) for name, s in runs.items()}


def report(runs: dict[str, tuple[float, Any]]) -> str:
    return "; ".join(
        f"{n}: F={f:.2f} R={r.accuracy.round(2).tolist()}" for n, (f, r) in runs.items()
    )


def test_class_incremental_replay_forgets_less_than_naive(class_il: dict[str, Any]) -> None:
    naive = class_il["naive"][0]
    assert naive >= 0.8, report(class_il)  # old classes are all but lost
    assert class_il["replay"][0] <= naive - 0.5, report(class_il)
    assert class_il["joint"][0] <= class_il["replay"][0], report(class_il)
    for _, results in class_il.values():  # every run first learns each task
        assert results.summary()["plasticity"] >= 0.85, report(class_il)


@pytest.mark.parametrize("strategy", ["ewc", "olora", "task_adapters"])
def test_task_incremental_strategies_forget_less_than_naive(
    task_il: dict[str, Any], strategy: str
) -> None:
    naive = task_il["naive"][0]
    assert naive >= 0.3, report(task_il)
    assert task_il[strategy][0] <= naive - 0.2, report(task_il)
    assert task_il[strategy][1].summary()["plasticity"] >= 0.8, report(task_il)


def test_task_adapters_with_task_ids_do_not_forget_at_all(task_il: dict[str, Any]) -> None:
    accuracy = task_il["task_adapters"][1].accuracy
    assert accuracy[1, 0] == accuracy[0, 0]  # the old adapter and head come back unchanged


def test_joint_forgets_least(task_il: dict[str, Any]) -> None:
    joint = task_il["joint"][0]
    # TaskAdapters forgets exactly 0 by construction; Joint may differ from it by noise.
    assert all(joint <= f + 0.05 for name, (f, _) in task_il.items() if name != "joint"), report(
        task_il
    )
    assert joint <= task_il["naive"][0] - 0.2, report(task_il)

"""Results: the accuracy matrix and its summary, per-task and per-class metrics, JSON
round trip and the Markdown table."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import petl
from petl import metrics
from tests.cl.cl_data import make_bert, split_records

SUMMARY_KEYS = {
    "average_accuracy",
    "forgetting",
    "bwt",
    "fwt",
    "plasticity",
    "average_incremental_accuracy",
    "final_accuracy_per_task",
}


@pytest.fixture(scope="module")
def fitted(tok: Any) -> tuple[petl.Stream, petl.Results]:
    stream = petl.Stream.from_records(split_records([[0, 1], [2, 3, 4]], 30, 12), val_fraction=0)
    learner = petl.Learner(
        make_bert(seed=3),
        tok,
        method="lora",
        strategies=[petl.Replay(memory=10)],
        config=petl.TrainConfig(epochs=3, batch_size=10, lr=3e-2, progress=False),
    )
    return stream, learner.fit(stream)


def test_results_of_a_run(fitted: tuple[petl.Stream, petl.Results]) -> None:
    stream, res = fitted
    assert res.task_names == ["t0", "t1"] and res.metric == ["accuracy", "accuracy"]
    assert res.accuracy.shape == (2, 2) and res.initial.shape == (2,)
    assert ((res.accuracy >= 0) & (res.accuracy <= 1)).all()
    summary = res.summary()
    assert set(summary) == SUMMARY_KEYS
    assert summary["average_accuracy"] == metrics.average_accuracy(res.accuracy)
    assert summary["forgetting"] == metrics.forgetting(res.accuracy)
    assert summary["bwt"] == metrics.backward_transfer(res.accuracy)
    assert summary["fwt"] == metrics.forward_transfer(res.accuracy, res.initial)
    assert summary["plasticity"] == metrics.plasticity(res.accuracy)
    assert summary["final_accuracy_per_task"] == res.accuracy[-1].tolist()
    info = res.info
    assert (
        info["scenario"] == "class"
        and info["strategies"] == ["replay"]
        and info["method"] == "lora"
    )
    assert 0 < info["trainable_params"] < info["total_params"]
    assert info["train_config"]["epochs"] == 3 and info["stream"] == stream.describe()


def test_per_class_accuracy_of_every_task(fitted: tuple[petl.Stream, petl.Results]) -> None:
    stream, res = fitted
    assert list(res.per_class) == ["t0", "t1"]
    for t, task in enumerate(stream.tasks):
        per_class = res.per_class[task.name]
        assert list(per_class) == task.labels  # every class of the task, in label order
        counts = np.array([sum(e.label == label for e in task.test) for label in task.labels])
        # per-class accuracies weighted by class size give the task's final accuracy
        weighted = float(np.dot(list(per_class.values()), counts) / counts.sum())
        assert weighted == pytest.approx(res.accuracy[-1, t])


def test_save_load_round_trip(fitted: tuple[petl.Stream, petl.Results], tmp_path: Any) -> None:
    _, res = fitted
    path = tmp_path / "sub" / "results.json"
    res.save(str(path))
    data = json.loads(path.read_text())
    assert set(data) == {
        "task_names",
        "accuracy",
        "initial",
        "metric",
        "per_class",
        "summary",
        "info",
    }
    assert set(data["summary"]) == SUMMARY_KEYS
    back = petl.Results.load(str(path))
    assert back.task_names == res.task_names and back.metric == res.metric
    # A saved float equals its reload bit for bit (JSON keeps every digit of a float).
    assert np.array_equal(back.accuracy, res.accuracy) and np.array_equal(back.initial, res.initial)
    assert back.per_class == res.per_class and back.info == json.loads(json.dumps(res.info))
    assert back.summary() == res.summary()


def test_table_and_hand_built_results(tmp_path: Any) -> None:
    res = petl.Results(["a", "b"], np.array([[0.9, 0.1], [0.5, 0.8]]), np.array([0.5, 0.25]))
    assert res.table().splitlines() == [
        "| after \\ on | a | b |",
        "|---|---|---|",
        "| (before) | 0.500 | 0.250 |",
        "| a | 0.900 | 0.100 |",
        "| b | 0.500 | 0.800 |",
    ]
    s = res.summary()
    assert s["forgetting"] == pytest.approx(0.4) and s["bwt"] == pytest.approx(-0.4)
    assert s["fwt"] == pytest.approx(0.1 - 0.25) and s["average_accuracy"] == pytest.approx(0.65)
    res.save(str(tmp_path / "r.json"))
    assert petl.Results.load(str(tmp_path / "r.json")).summary() == s


def test_one_task_stream(tok: Any) -> None:
    stream = petl.Stream.from_records(split_records([[0, 1]], 16, 8), val_fraction=0)
    learner = petl.Learner(make_bert(), tok, config=petl.TrainConfig(epochs=1, progress=False))
    res = learner.fit(stream)
    assert res.accuracy.shape == (1, 1)
    s = res.summary()
    assert s["forgetting"] == 0.0 and s["bwt"] == 0.0 and s["fwt"] == 0.0
    assert s["average_accuracy"] == s["plasticity"] == res.accuracy[0, 0]

"""An avalanche-lib benchmark (text inputs) becomes a petl Stream that petl trains on."""

from __future__ import annotations

import random
import sys
from typing import Any

import numpy as np
import pytest

from tests.extras import need

need("avalanche", "petl[avalanche]")  # before avalanche's imports, for a clear message

from avalanche.benchmarks.scenarios.dataset_scenario import (  # noqa: E402
    benchmark_from_datasets,
)
from avalanche.benchmarks.utils.classification_dataset import (  # noqa: E402
    _make_taskaware_classification_dataset,
)

import petl  # noqa: E402
from petl.errors import ConfigError, DataError  # noqa: E402
from petl.interop.avalanche import stream_from_benchmark  # noqa: E402
from tests.cl.cl_data import class_examples, make_bert, make_tokenizer  # noqa: E402

NAMES = ["sports", "money", "cats", "dogs"]


def dataset(rows: list[tuple[Any, int]], task: int) -> Any:
    """An AvalancheDataset of (x, class id) rows with one task label."""
    return _make_taskaware_classification_dataset(
        rows, targets=[y for _, y in rows], task_labels=task
    )


def text_rows(classes: list[int], n: int, rng: random.Random) -> list[tuple[Any, int]]:
    # class_examples labels as "L<c>": take the class id back from it.
    return [(r["text"], int(r["label"][1:])) for r in class_examples(classes, n, rng)]


def text_benchmark(n_train: int = 24, n_test: int = 12) -> Any:
    rng = random.Random(0)
    groups = [[0, 1], [2, 3]]
    return benchmark_from_datasets(
        train=[dataset(text_rows(g, n_train, rng), t) for t, g in enumerate(groups)],
        test=[dataset(text_rows(g, n_test, rng), t) for t, g in enumerate(groups)],
    )


def test_convert_and_fit() -> None:
    stream = stream_from_benchmark(text_benchmark(), label_names=NAMES, val_fraction=0)
    assert stream.scenario == "class"
    assert stream.names == ["exp0", "exp1"]
    assert [t.labels for t in stream.tasks] == [["sports", "money"], ["cats", "dogs"]]
    assert [(len(t.train), len(t.test)) for t in stream.tasks] == [(24, 12), (24, 12)]
    assert stream.tasks[0].train[0].text.startswith(("c0_", "c1_", "n"))
    assert stream.block_labels() == [["sports", "money"], ["cats", "dogs"]]

    learner = petl.Learner(
        make_bert(),
        make_tokenizer(),
        method="lora",
        strategies=[petl.Replay(memory=8)],
        config=petl.TrainConfig(epochs=1, batch_size=8, progress=False),
    )
    results = learner.fit(stream)
    acc = np.asarray(results.accuracy)
    assert acc.shape == (2, 2)
    assert np.all((acc >= 0) & (acc <= 1))


def test_options() -> None:
    bench = text_benchmark(n_train=20, n_test=10)
    stream = petl.Stream.from_avalanche(
        bench, scenario="task", label_names=lambda c: f"class{c}", max_train=10, max_test=4
    )
    assert stream.scenario == "task"
    assert stream.tasks[1].labels == ["class2", "class3"]
    assert [len(t.test) for t in stream.tasks] == [4, 4]
    assert all(len(t.train) <= 10 and not t.val for t in stream.tasks)  # no val unless asked
    # Default names: str(class id).
    assert stream_from_benchmark(bench).tasks[0].labels == ["0", "1"]


def test_non_text_needs_to_text() -> None:
    def bench(x: Any) -> Any:
        return benchmark_from_datasets(
            train=[dataset([(x, 0), (x, 1)], 0)], test=[dataset([(x, 0), (x, 1)], 0)]
        )

    with pytest.raises(DataError, match="to_text"):
        stream_from_benchmark(bench([3, 4]))
    stream = stream_from_benchmark(
        bench([5, 6]), to_text=lambda ids: " ".join(f"n{i}" for i in ids), val_fraction=0
    )
    assert stream.tasks[0].train[0].text == "n5 n6"


def test_bad_input() -> None:
    with pytest.raises(DataError, match="label_names has no name for class id 3"):
        stream_from_benchmark(text_benchmark(), label_names=NAMES[:3])
    with pytest.raises(DataError, match="train_stream"):
        stream_from_benchmark(object())


def test_missing_avalanche(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "avalanche", None)  # import avalanche -> ImportError
    with pytest.raises(ConfigError, match=r"pip install petl\[avalanche\]"):
        stream_from_benchmark(text_benchmark())


def test_one_test_experience_split_by_class() -> None:
    rng = random.Random(1)
    train = [dataset(text_rows(g, 8, rng), 0) for g in ([0, 1], [2, 3])]
    bench = benchmark_from_datasets(
        train=train, test=[dataset(text_rows([0, 1, 2, 3], 12, rng), 0)]
    )
    stream = stream_from_benchmark(bench, val_fraction=0)
    assert [t.labels for t in stream.tasks] == [["0", "1"], ["2", "3"]]
    assert [len(t.test) for t in stream.tasks] == [6, 6]

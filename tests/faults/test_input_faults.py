"""Strict, early input checks: strategies, TrainConfig, max_length, the label rule, unseen
and duplicate labels and tasks, and readers that name the file on every decode error."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

import petl
from petl import ConfigError, DataError
from tests.cl.cl_data import make_bert, split_records


def make(tok: Any, **kwargs: Any) -> petl.Learner:
    return petl.Learner(make_bert(seed=0), tok, method="lora", **kwargs)


# ---- strategies and config ------------------------------------------------------------------
def test_strategy_names_are_resolved_and_single_strategies_listed(tok: Any) -> None:
    lrn = make(tok, strategies=["ewc", "replay"])
    assert [type(s) for s in lrn.strategies] == [petl.EWC, petl.Replay]
    assert [type(s) for s in make(tok, strategies=petl.EWC()).strategies] == [petl.EWC]
    assert [type(s) for s in make(tok, strategies="lwf").strategies] == [petl.LwF]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["ewx"], r"Unknown strategy 'ewx'.*Did you mean 'ewc'.*replay"),
        ([petl.EWC], r"the class EWC, not an instance: write EWC\(\)"),
        (petl.Replay, r"the class Replay, not an instance"),
        ([object()], r"not a strategy.*petl.EWC\(\)"),
        ([petl.EWC(), 3], r"3 \(int\), which is not a strategy"),
    ],
)
def test_things_that_are_not_strategies_are_refused(tok: Any, given: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(tok, strategies=given)


def test_config_dict_becomes_train_config_or_is_refused(tok: Any) -> None:
    assert make(tok, config={"epochs": 1, "lr": 1e-3}).config == petl.TrainConfig(epochs=1, lr=1e-3)
    with pytest.raises(ConfigError, match=r"Unknown training setting\(s\) \['epoch'\]"):
        make(tok, config={"epoch": 1})
    with pytest.raises(ConfigError, match=r"config must be a petl\.TrainConfig"):
        make(tok, config=[("epochs", 1)])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"lr": math.nan}, "lr must be finite"),
        ({"lr": math.inf}, "lr must be finite"),
        ({"lr": "1e-3"}, r"lr must be a number \(a number such as 1e-3, not a string\)"),
        ({"seed": -5}, "seed must be an integer >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"epochs": True}, "epochs must be a positive integer, got True"),
        ({"batch_size": 8.0}, "batch_size must be a positive integer"),
        ({"max_grad_norm": math.nan}, "max_grad_norm must be finite"),
        ({"weight_decay": math.inf}, "weight_decay must be finite"),
        ({"warmup_ratio": math.nan}, "warmup_ratio must be finite"),
        ({"progress": "yes"}, "progress must be True or False"),
        ({"nonfinite": "ignore"}, r"Unknown nonfinite policy 'ignore'.*error, skip"),
    ],
)
def test_train_config_checks_types_and_finiteness(setting: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        petl.TrainConfig(**setting)


def test_max_length_beyond_the_models_positions_fails_at_setup(tok: Any) -> None:
    long_text = " ".join(["c0_0", "c1_1"] * 30)  # 60 words; the tiny BERT has 32 positions
    records = {"t0": {"train": [{"text": long_text, "label": "a"}, {"text": "n1", "label": "b"}]}}
    records["t0"]["test"] = records["t0"]["train"]
    stream = petl.Stream.from_records(records, val_fraction=0)
    lrn = make(tok, config=petl.TrainConfig(max_length=128, progress=False))
    with pytest.raises(ConfigError, match=r"62 tokens .*max_length=128.* 32 positions"):
        lrn.setup(stream)


# ---- labels and texts -----------------------------------------------------------------------
def records(labels: list[Any], texts: list[Any] | None = None) -> dict[str, Any]:
    texts = texts or [f"c0_{i % 4}" for i in range(len(labels))]
    rows = [{"text": t, "label": y} for t, y in zip(texts, labels, strict=True)]
    return {"t0": {"train": rows, "test": rows}}


def test_ints_floats_and_their_strings_are_one_class() -> None:
    stream = petl.Stream.from_records(
        records([1, "1", 1.0, np.int64(1), 0, 0.0, "0", 0.5]), val_fraction=0
    )
    assert stream.tasks[0].labels == ["0", "0.5", "1"]
    bools = petl.Stream.from_records(records([True, False]), val_fraction=0)
    assert bools.tasks[0].labels == ["False", "True"]


@pytest.mark.parametrize(
    ("labels", "texts", "message"),
    [
        ([1, True], None, "mix booleans and numbers"),
        ([1, math.nan], None, r"train\[1\]: label is nan"),
        ([1, [2]], None, r"label \[2\] \(list\) is not a string or a number"),
        ([1, 2], ["c0_0", None], r"train\[1\]: 'text' is None"),
        ([1, 2], ["c0_0", math.nan], r"'text' is nan"),
    ],
)
def test_bad_labels_and_texts_are_refused(
    labels: list[Any], texts: list[Any] | None, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        petl.Stream.from_records(records(labels, texts), val_fraction=0)


def test_test_label_unseen_in_training_is_refused() -> None:
    recs = split_records([[0, 1]], 8, 4)
    recs["t0"]["test"].append({"text": "c5_0 n1", "label": "L5"})
    with pytest.raises(DataError, match=r"task 't0': test label\(s\) \['L5'\] never occur"):
        petl.Stream.from_records(recs)


def test_declared_labels_must_be_a_list_of_unique_names() -> None:
    recs = split_records([[0, 1]], 8, 4)
    with pytest.raises(DataError, match=r"labels \['L0'\] appear more than once"):
        petl.Stream.from_records({"t0": {**recs["t0"], "labels": ["L0", "L0", "L1"]}})
    with pytest.raises(DataError, match="labels must be a list of label names, got str 'L0'"):
        petl.Stream.from_records({"t0": {**recs["t0"], "labels": "L0"}})


# ---- files ----------------------------------------------------------------------------------
def task_dir(root: Any, name: str = "a", labels: Any = ("L0", "L1")) -> Any:
    folder = root / name
    folder.mkdir(parents=True)
    recs = split_records([[0, 1]], 8, 4)["t0"]
    (folder / "train.json").write_text(json.dumps(recs["train"]))
    (folder / "test.json").write_text(json.dumps(recs["test"]))
    (folder / "labels.json").write_text(json.dumps(labels))
    return folder


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"train.json is empty"),
        (b"\xff\xfe[{]", r"train.json is not UTF-8 text"),
        (b'[{"text": "a", "label": ', r"train.json is not valid JSON: .* line 1"),
        (b'{"text": "a"}', r"train.json must hold a JSON list of records, got dict"),
    ],
)
def test_readers_name_the_file(tmp_path: Any, content: bytes, message: str) -> None:
    folder = task_dir(tmp_path)
    (folder / "train.json").write_bytes(content)
    with pytest.raises(DataError, match=message):
        petl.Stream.from_dir(str(tmp_path))


def test_labels_json_must_list_unique_names_naming_the_file(tmp_path: Any) -> None:
    task_dir(tmp_path / "one", labels="pos")
    with pytest.raises(DataError, match=r"a/labels.json: labels must be a list.*got str 'pos'"):
        petl.Stream.from_dir(str(tmp_path / "one"))
    task_dir(tmp_path / "two", labels=["L0", "L0", "L1"])
    with pytest.raises(DataError, match=r"a/labels.json: labels \['L0'\] appear more than once"):
        petl.Stream.from_dir(str(tmp_path / "two"))


def test_unseen_test_label_names_the_task_folder(tmp_path: Any) -> None:
    folder = task_dir(tmp_path, labels=["L0", "L1", "L7"])
    test = json.loads((folder / "test.json").read_text())
    (folder / "test.json").write_text(json.dumps([*test, {"text": "c7_0", "label": "L7"}]))
    with pytest.raises(DataError, match=rf"task 'a' \({folder}\): test label\(s\) \['L7'\]"):
        petl.Stream.from_dir(str(tmp_path))


def test_duplicate_task_names_are_refused(tmp_path: Any) -> None:
    task_dir(tmp_path)
    with pytest.raises(DataError, match=r"Task name\(s\) \['a'\] are listed more than once"):
        petl.Stream.from_dir(str(tmp_path), tasks=["a", "a"])


def test_table_reader_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "a", "label": 1}\n{"text": \n')
    with pytest.raises(DataError, match=r"Cannot read .*bad.jsonl"):
        petl.Stream.from_files({"t": str(path)})

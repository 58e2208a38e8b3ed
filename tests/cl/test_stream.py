"""Stream builders (records, files, cl_benchmark layout, hub code path, flat table),
validation carving, text pairs, and the label spaces of the three scenarios."""

from __future__ import annotations

import json
from typing import Any

import pytest

from petl import DataError, Stream
from petl.errors import ConfigError
from petl.stream import Example, _records_from_datasetdict
from tests.extras import need_path

TRAIN = [{"text": f"good {i}", "label": "pos"} for i in range(10)] + [
    {"text": f"bad {i}", "label": "neg"} for i in range(10)
]
TEST = [{"text": "good x", "label": "pos"}, {"text": "bad x", "label": "neg"}]


def texts(examples: list[Example]) -> list[str]:
    return [e.text for e in examples]


# ---- from_records ---------------------------------------------------------------------
def test_from_records_basics() -> None:
    stream = Stream.from_records({"sent": {"train": TRAIN, "test": TEST}}, val_fraction=0)
    (task,) = stream.tasks
    assert stream.scenario == "class" and stream.names == ["sent"]
    assert task.labels == ["neg", "pos"]  # sorted names found
    assert len(task.train) == 20 and len(task.test) == 2 and task.val == []
    assert task.train[0] == Example("good 0", "pos")


def test_labels_listed_keep_their_order() -> None:
    stream = Stream.from_records({"s": {"train": TRAIN, "test": TEST, "labels": ["pos", "neg"]}})
    assert stream.tasks[0].labels == ["pos", "neg"]
    assert stream.label_ids(0) == {"pos": 0, "neg": 1}


def test_validation_is_carved_from_train_without_overlap() -> None:
    stream = Stream.from_records({"s": {"train": TRAIN, "test": TEST}}, val_fraction=0.25)
    task = stream.tasks[0]
    assert len(task.val) == 5 and len(task.train) == 15
    assert not set(texts(task.val)) & set(texts(task.train))
    assert set(texts(task.val)) | set(texts(task.train)) == {r["text"] for r in TRAIN}
    again = Stream.from_records({"s": {"train": TRAIN, "test": TEST}}, val_fraction=0.25)
    assert texts(again.tasks[0].val) == texts(task.val)  # seeded, deterministic
    other = Stream.from_records({"s": {"train": TRAIN, "test": TEST}}, val_fraction=0.25, seed=1)
    assert texts(other.tasks[0].val) != texts(task.val)


def test_given_validation_is_kept() -> None:
    val = [{"text": "fine", "label": "pos"}]
    stream = Stream.from_records({"s": {"train": TRAIN, "val": val, "test": TEST}})
    assert texts(stream.tasks[0].val) == ["fine"] and len(stream.tasks[0].train) == 20


def test_max_train_and_max_test_subsample() -> None:
    stream = Stream.from_records(
        {"s": {"train": TRAIN, "test": TRAIN}}, max_train=6, max_test=4, val_fraction=0.5
    )
    task = stream.tasks[0]
    assert len(task.train) == 6 and len(task.test) == 4 and len(task.val) == 3


def test_text_pairs_reach_the_tokenizer(tok: Any) -> None:
    from petl.families.classification import encode_split

    recs = [
        {"sentence": "c0_0 c0_1", "sentence2": "n1 n2", "label": "a"},
        {"text": "c1_0", "text_pair": "n3", "label": "b"},
    ]
    stream = Stream.from_records({"nli": {"train": recs, "test": recs}}, val_fraction=0)
    ex = stream.tasks[0].train
    assert ex[0] == Example("c0_0 c0_1", "a", "n1 n2") and ex[1].text_pair == "n3"
    rows = encode_split(stream.label_ids(0), 0, ex, tok, 32)
    # [CLS] A [SEP] B [SEP]: the second segment has token type 1.
    assert rows[0].token_type_ids == [0, 0, 0, 0, 1, 1, 1]
    assert tok.convert_ids_to_tokens(rows[0].input_ids)[-3:] == ["n1", "n2", "[SEP]"]
    assert [r.label for r in rows] == [0, 1]


# ---- from_files -------------------------------------------------------------------------
def write_formats(tmp_path: Any) -> dict[str, str]:
    import pandas as pd

    df = pd.DataFrame(TRAIN)
    paths = {ext: str(tmp_path / f"data.{ext}") for ext in ("json", "jsonl", "csv", "parquet")}
    with open(paths["json"], "w") as f:
        json.dump(TRAIN, f)
    df.to_json(paths["jsonl"], orient="records", lines=True)
    df.to_csv(paths["csv"], index=False)
    df.to_parquet(paths["parquet"])
    return paths


def test_from_files_reads_every_format(tmp_path: Any) -> None:
    paths = write_formats(tmp_path)
    stream = Stream.from_files(paths, scenario="domain", val_fraction=0)
    assert stream.names == ["json", "jsonl", "csv", "parquet"]
    first = stream.tasks[0]
    for task in stream.tasks:
        assert task.labels == ["neg", "pos"]
        # only "train" given: a fixed 80/20 split of it
        assert len(task.train) == 16 and len(task.test) == 4
        assert sorted(texts(task.train + task.test)) == sorted(r["text"] for r in TRAIN)
        assert [e.label for e in task.train] == [
            {r["text"]: r["label"] for r in TRAIN}[e.text] for e in task.train
        ]
    # Same data under another task name: the fixed split is keyed by the task's name.
    again = Stream.from_files({"json": paths["parquet"]}, val_fraction=0)
    assert texts(again.tasks[0].test) == texts(first.test)


def test_from_files_split_mapping_and_columns(tmp_path: Any) -> None:
    import pandas as pd

    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.DataFrame({"body": ["c0_0", "c1_0"], "y": ["a", "b"]}).to_csv(train, index=False)
    pd.DataFrame({"body": ["c0_1"], "y": ["a"]}).to_csv(test, index=False)
    stream = Stream.from_files(
        {"t": {"train": str(train), "test": str(test)}},
        text_column="body",
        label_column="y",
        val_fraction=0,
    )
    assert texts(stream.tasks[0].train) == ["c0_0", "c1_0"] and texts(stream.tasks[0].test) == [
        "c0_1"
    ]
    with pytest.raises(DataError, match="Column 'nope' not found"):
        Stream.from_files({"t": str(train)}, label_column="nope")


def test_from_files_bad_paths(tmp_path: Any) -> None:
    with pytest.raises(DataError, match="does not exist"):
        Stream.from_files({"t": str(tmp_path / "missing.json")})
    with pytest.raises(DataError, match=r"use \.json"):
        Stream.from_files({"t": str(tmp_path / "data.xlsx")})


# ---- from_dir (the cl_benchmark layout) -------------------------------------------------
def write_benchmark(root: Any) -> None:
    def dump(task: str, name: str, data: Any) -> None:
        (root / task).mkdir(exist_ok=True)
        (root / task / f"{name}.json").write_text(json.dumps(data))

    recs = [{"sentence": f"s{i}", "label": "A" if i % 2 else "B"} for i in range(20)]
    dump("full", "labels", ["A", "B"])
    dump("full", "train", recs)
    dump("full", "test", recs[:4])
    dump("testonly", "labels", ["A", "B"])
    dump("testonly", "test", recs)
    dump("trainonly", "labels", ["A", "B"])
    dump("trainonly", "train", recs)
    (root / "not_a_task.txt").write_text("ignored")


def test_from_dir_layout_and_deterministic_split(tmp_path: Any) -> None:
    write_benchmark(tmp_path)
    stream = Stream.from_dir(str(tmp_path), scenario="domain", val_fraction=0)
    assert stream.names == ["full", "testonly", "trainonly"]  # all task folders, sorted
    full, testonly, trainonly = stream.tasks
    assert len(full.train) == 20 and len(full.test) == 4
    assert len(testonly.train) == 10 and len(testonly.test) == 10  # half/half of test.json
    assert len(trainonly.train) == 16 and len(trainonly.test) == 4  # 80/20 of train.json
    for task in (testonly, trainonly):
        assert not set(texts(task.train)) & set(texts(task.test))
    # The split does not depend on the run's seed and is the same on every call.
    for seed in (0, 7):
        again = Stream.from_dir(
            str(tmp_path), tasks=["trainonly", "testonly"], seed=seed, val_fraction=0
        )
        assert texts(again.tasks[0].test) == texts(trainonly.test)
        assert texts(again.tasks[1].train) == texts(testonly.train)


def test_from_dir_errors(tmp_path: Any) -> None:
    write_benchmark(tmp_path)
    with pytest.raises(ConfigError, match="Did you mean 'full'"):
        Stream.from_dir(str(tmp_path), tasks=["ful"])
    with pytest.raises(DataError, match="does not exist"):
        Stream.from_dir(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="'empty' is empty"):
        Stream.from_dir(str(tmp_path), tasks=["full", "empty"])


@pytest.mark.slow
def test_from_dir_real_cl_benchmark() -> None:
    import os

    root = os.path.join(os.path.dirname(__file__), "../../../shared/data/cl_benchmark")
    need_path(root, "the shared data folder ../shared/data/cl_benchmark")
    stream = Stream.from_dir(
        root, tasks=["dbpedia", "amazon", "yelp", "agnews"], max_train=50, max_test=20
    )
    assert [len(b) for b in stream.block_labels()] == [14, 5, 0, 4]


# ---- from_hub (code path on local data) ---------------------------------------------------
def class_label_dataset() -> Any:
    import datasets

    features = datasets.Features(
        {"content": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    data = {"content": ["bad", "good", "meh"], "label": [0, 1, 0]}
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(data, features=features),
            "validation": datasets.Dataset.from_dict(
                {"content": ["fine"], "label": [1]}, features=features
            ),
            "test": datasets.Dataset.from_dict(data, features=features),
            "unsupervised": datasets.Dataset.from_dict(data, features=features),
        }
    )


def test_records_from_datasetdict_uses_classlabel_names() -> None:
    spec = _records_from_datasetdict(class_label_dataset(), None, "label")
    assert set(spec) == {"train", "val", "test", "labels"}  # "unsupervised" is skipped
    assert spec["labels"] == ["neg", "pos"]
    assert [r["label"] for r in spec["train"]] == ["neg", "pos", "neg"]
    assert spec["val"][0]["label"] == "pos"


def test_from_hub_code_path(monkeypatch: Any) -> None:
    import datasets

    calls = []

    def fake_load(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return class_label_dataset()

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    stream = Stream.from_hub({"imdb": "imdb", "sst2": ("glue", "sst2")}, scenario="domain")
    assert calls == [("imdb",), ("glue", "sst2")]
    task = stream.tasks[1]
    assert task.labels == ["neg", "pos"] and texts(task.val) == ["fine"]
    assert [(e.text, e.label) for e in task.train] == [
        ("bad", "neg"),
        ("good", "pos"),
        ("meh", "neg"),
    ]


def test_from_hub_local_json_through_load_dataset(tmp_path: Any) -> None:
    # A local "hub" reference: load_dataset("json", data_files=...) style arguments.
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in TRAIN))
    import datasets

    real = datasets.load_dataset

    def local(*args: Any, **kwargs: Any) -> Any:
        return real("json", data_files={"train": str(path), "test": str(path)})

    import unittest.mock

    with unittest.mock.patch.object(datasets, "load_dataset", local):
        stream = Stream.from_hub({"local": "any/name"}, val_fraction=0)
    assert len(stream.tasks[0].train) == 20 and stream.tasks[0].labels == ["neg", "pos"]


# ---- from_table ---------------------------------------------------------------------------
def table() -> list[dict[str, Any]]:
    rows = []
    for label in ("a", "b", "c", "d"):
        for i in range(4):
            rows.append(
                {"text": f"{label}{i}", "label": label, "split": "test" if i == 3 else "train"}
            )
    return rows


def test_from_table_with_task_column() -> None:
    rows = [dict(r, task="second" if r["label"] in "cd" else "first") for r in table()]
    stream = Stream.from_table(rows, scenario="task", val_fraction=0)
    assert stream.names == ["first", "second"]
    assert [t.labels for t in stream.tasks] == [["a", "b"], ["c", "d"]]
    assert texts(stream.tasks[1].test) == ["c3", "d3"]


def test_from_table_cuts_labels_for_class_incremental() -> None:
    rows = list(reversed(table()))  # row order must not change the task order
    stream = Stream.from_table(rows, classes_per_task=2, val_fraction=0)
    assert stream.names == ["classes_0", "classes_1"]
    assert [t.labels for t in stream.tasks] == [["a", "b"], ["c", "d"]]


def test_from_table_without_task_ids_errors() -> None:
    with pytest.raises(DataError, match="task-incremental learning needs the task id"):
        Stream.from_table(table(), scenario="task", classes_per_task=2)
    with pytest.raises(DataError, match="domain-incremental stream needs task ids"):
        Stream.from_table(table(), scenario="domain")
    with pytest.raises(DataError, match="classes_per_task"):
        Stream.from_table(table(), scenario="class")
    unlabelled = [{"text": "x"}, {"text": "y", "label": "a"}]
    with pytest.raises(DataError, match="no 'label'"):
        Stream.from_table(unlabelled, classes_per_task=1)


# ---- scenarios and their label spaces -------------------------------------------------------
def reviews(labels: list[str]) -> dict[str, Any]:
    recs = [{"text": f"{label} {i}", "label": label} for label in labels for i in range(3)]
    return {"train": recs, "test": recs, "labels": labels}


STARS = ["1", "2", "3"]


def test_class_incremental_label_space_reuses_overlapping_labels() -> None:
    stream = Stream.from_records(
        {"amazon": reviews(STARS), "yelp": reviews(STARS), "news": reviews(["world", "sport"])},
        scenario="class",
    )
    assert stream.block_labels() == [STARS, [], ["world", "sport"]]  # yelp adds nothing
    assert stream.label_ids(1) == {"1": 0, "2": 1, "3": 2}
    assert stream.label_ids(2) == {"world": 3, "sport": 4}


def test_task_incremental_label_space_is_per_task() -> None:
    stream = Stream.from_records(
        {"amazon": reviews(STARS), "news": reviews(["world", "sport"])}, scenario="task"
    )
    assert stream.block_labels() == [STARS, ["world", "sport"]]
    assert stream.label_ids(1) == {"world": 0, "sport": 1}


def test_domain_incremental_needs_one_label_set() -> None:
    stream = Stream.from_records({"a": reviews(STARS), "b": reviews(STARS)}, scenario="domain")
    assert stream.block_labels() == [STARS, []] and stream.label_ids(1) == {"1": 0, "2": 1, "3": 2}
    with pytest.raises(DataError, match="domain-incremental needs one shared label set"):
        Stream.from_records({"a": reviews(STARS), "b": reviews(["x", "y"])}, scenario="domain")


# ---- bad input ------------------------------------------------------------------------------
def test_bad_streams_raise_clear_errors() -> None:
    with pytest.raises(DataError, match="'e' is empty"):
        Stream.from_records({"ok": {"train": TRAIN, "test": TEST}, "e": {"train": [], "test": []}})
    with pytest.raises(DataError, match=r"label\(s\) \['maybe'\] outside its label set"):
        Stream.from_records(
            {
                "t": {
                    "train": [*TRAIN, {"text": "?", "label": "maybe"}],
                    "test": TEST,
                    "labels": ["neg", "pos"],
                }
            }
        )
    with pytest.raises(ConfigError, match=r"Unknown scenario 'clas'\. Did you mean 'class'"):
        Stream.from_records({"t": {"train": TRAIN, "test": TEST}}, scenario="clas")
    with pytest.raises(DataError, match=r"train\[1\]: record has no 'label'"):
        Stream.from_records({"t": {"train": [TRAIN[0], {"text": "unlabelled"}], "test": TEST}})
    with pytest.raises(DataError, match="no text field"):
        Stream.from_records({"t": {"train": [{"label": "pos"}], "test": TEST}})
    with pytest.raises(DataError, match="at least one task"):
        Stream([], "class")
    with pytest.raises(DataError, match="no train examples"):
        Stream.from_records({"t": {"train": TRAIN[:1]}})  # 80% of one example is none

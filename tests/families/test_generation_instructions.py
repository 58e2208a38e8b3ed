"""The O-LoRA benchmark as instruction streams (petl.instructions): the paper's orders and
its prompt, character for character, on the offline cl_benchmark copy."""

from __future__ import annotations

import os

import pytest

from petl.errors import ConfigError, DataError
from petl.families.generation import TEMPLATE
from petl.instructions import (
    ORDERS,
    order_stream,
    order_tasks,
    paper_instruction,
    paper_instructions,
)

CL_BENCHMARK = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cl_benchmark"
)


def test_paper_prompt_verbatim() -> None:
    head = paper_instruction("agnews", ["World", "Sports"])
    prompt = TEMPLATE.format(instruction=head, input="Some news.")
    # src/uie_dataset_lora.py: instruction + "Option: " + labels + " \n" + input + "\nAnswer:"
    assert prompt == (
        "What is the topic of the following paragraph? Choose one from the option.\n"
        "Option: World, Sports \nSome news.\nAnswer:"
    )
    assert paper_instruction("MNLI", ["a"]).startswith("What is the logical relationship")
    with pytest.raises(ConfigError, match="O-LoRA benchmark task"):
        paper_instruction("squad", ["x"])


def test_orders() -> None:
    assert order_tasks(1) == ["dbpedia", "amazon", "yelp", "agnews"]
    assert order_tasks("3") == ["yelp", "amazon", "agnews", "dbpedia"]
    assert len(ORDERS["long"]) == 9 and set(ORDERS["1"]) < set(ORDERS["long"])
    with pytest.raises(ConfigError, match="order"):
        order_tasks(4)
    with pytest.raises(DataError, match="does not exist"):
        order_stream(1, "/nonexistent/cl_benchmark")


@pytest.mark.skipif(not os.path.isdir(CL_BENCHMARK), reason="cl_benchmark data not present")
@pytest.mark.parametrize("order", list(ORDERS))
def test_order_streams_on_the_offline_copy(order: str) -> None:
    stream = order_stream(order, CL_BENCHMARK, max_train=4, max_test=2, val_fraction=0.0)
    assert stream.names == list(ORDERS[order]) and stream.family == "generation"
    for task in stream.tasks:
        assert task.instruction.endswith(f"Option: {', '.join(task.labels)} ")
        assert len(task.train) == 4 and len(task.test) == 2
        assert all(e.label in task.labels for e in task.test)


CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "configs")


@pytest.mark.skipif(not os.path.isdir(CL_BENCHMARK), reason="cl_benchmark data not present")
@pytest.mark.parametrize("name", ["instr_order1", "instr_order2", "instr_order3", "instr_long"])
def test_shipped_configs_carry_the_paper_prompts(name: str) -> None:
    import tomllib

    from petl.bench import config

    order = name.removeprefix("instr_").removeprefix("order")
    for variant in (name, f"{name}_gpu"):
        path = os.path.join(CONFIGS, f"{variant}.toml")
        with open(path, "rb") as f:
            stream = tomllib.load(f)["stream"]
        assert stream["tasks"] == list(ORDERS[order])
        assert stream["instructions"] == paper_instructions(stream["tasks"], CL_BENCHMARK)
        loaded = config.load(path, smoke=True)  # every key and value checked
        assert all(run.strategies[-1][0] == "ability" for run in loaded.runs)


def test_glue_no_gold_label_records_are_dropped(tmp_path) -> None:
    import json

    import petl

    task = tmp_path / "mnli"
    task.mkdir()
    (task / "labels.json").write_text(json.dumps(["entailment", "neutral"]))
    rows = [
        {"sentence": f"s {i}", "label": ["entailment", "neutral", "-"][i % 3]} for i in range(9)
    ]
    (task / "train.json").write_text(json.dumps(rows))
    (task / "test.json").write_text(json.dumps(rows))
    stream = petl.Stream.from_dir(str(tmp_path), family="generation", val_fraction=0.0)
    (t,) = stream.tasks
    assert len(t.train) == len(t.test) == 6  # MNLI's test marks 131 examples "-": no gold label
    assert {e.label for e in t.test} == {"entailment", "neutral"}

"""The O-LoRA continual-learning benchmark (Wang et al. 2023) as instruction streams: its task
orders and its instructions, on the offline copy in ../shared/data/cl_benchmark.

The paper's prompt (O-LoRA repo, configs/instruction_config.json and
src/uie_dataset_lora.py) is the task kind's instruction, "Option: " and the label strings,
then the input and "Answer:":

    What is the topic of the following paragraph? Choose one from the option.
    Option: World, Sports, Business, Science or Technology
    <the article>
    Answer:

With petl's generation template "{instruction}\\n{input}\\nAnswer:" that is exactly the
prompt when the instruction carries the options (`paper_instruction`). The answer is the
label string, scored by exact match.

Orders (the paper's Table 1, yahoo replaced by yelp: the offline copy has no yahoo; yelp
has amazon's five labels):
    1  dbpedia -> amazon -> yelp -> agnews
    2  dbpedia -> amazon -> agnews -> yelp
    3  yelp -> amazon -> agnews -> dbpedia
    long  the paper's 15-task order restricted to the tasks present here:
          yelp, amazon, mnli, qqp, rte, sst-2, dbpedia, agnews, wic (9 tasks; CB, COPA,
          IMDB, yahoo, MultiRC and BoolQA are not in the copy)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from petl.errors import DataError, unknown_choice

DATA_DIR = "../shared/data/cl_benchmark"
ORDERS: dict[str, tuple[str, ...]] = {
    "1": ("dbpedia", "amazon", "yelp", "agnews"),
    "2": ("dbpedia", "amazon", "agnews", "yelp"),
    "3": ("yelp", "amazon", "agnews", "dbpedia"),
    "long": ("yelp", "amazon", "mnli", "qqp", "rte", "sst-2", "dbpedia", "agnews", "wic"),
}
# The paper's instruction per task kind (configs/instruction_config.json), verbatim.
KIND_INSTRUCTIONS = {
    "NLI": 'What is the logical relationship between the "sentence 1" and the "sentence 2"? '
    "Choose one from the option.\n",
    "QQP": 'Whether the "first sentence" and the "second sentence" have the same meaning? '
    "Choose one from the option.\n",
    "SC": "What is the sentiment of the following paragraph? Choose one from the option.\n",
    "TC": "What is the topic of the following paragraph? Choose one from the option.\n",
    "WiC": "Given a word and two sentences, whether the word is used with the same sense in "
    "both sentence? Choose one from the option.\n",
}
TASK_KINDS = {
    "dbpedia": "TC",
    "agnews": "TC",
    "yahoo": "TC",
    "amazon": "SC",
    "yelp": "SC",
    "sst-2": "SC",
    "imdb": "SC",
    "mnli": "NLI",
    "rte": "NLI",
    "cb": "NLI",
    "qqp": "QQP",
    "wic": "WiC",
}


def paper_instruction(task: str, labels: Sequence[str]) -> str:
    """The O-LoRA prompt head of a task: its kind's instruction, then "Option: " and the
    labels (the template adds a newline, the input and "Answer:")."""
    kind = TASK_KINDS.get(task.lower())
    if kind is None:
        raise unknown_choice("O-LoRA benchmark task", task, sorted(TASK_KINDS))
    return f"{KIND_INSTRUCTIONS[kind]}Option: {', '.join(labels)} "


def read_labels(data_dir: str, task: str) -> list[str]:
    path = os.path.join(data_dir, task, "labels.json")
    if not os.path.exists(path):
        raise DataError(f"{path} is missing: {data_dir!r} is not in the cl_benchmark layout.")
    with open(path, encoding="utf-8") as f:
        return [str(x) for x in json.load(f)]


def paper_instructions(tasks: Sequence[str], data_dir: str = DATA_DIR) -> dict[str, str]:
    """{task: paper_instruction} with the labels read from `data_dir`."""
    return {t: paper_instruction(t, read_labels(data_dir, t)) for t in tasks}


def order_tasks(order: str | int) -> list[str]:
    """The task names of an order ("1", "2", "3" or "long")."""
    key = str(order)
    if key not in ORDERS:
        raise unknown_choice("O-LoRA benchmark order", key, list(ORDERS))
    return list(ORDERS[key])


def order_stream(
    order: str | int,
    data_dir: str = DATA_DIR,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> Any:
    """The instruction stream of an order: generation family, the paper's prompts, answers
    = label strings; `max_train`/`max_test` examples per task (a seeded draw)."""
    from petl.stream import Stream

    if not os.path.isdir(data_dir):
        raise DataError(
            f"The O-LoRA benchmark data folder {data_dir!r} does not exist: pass data_dir= "
            "(the cl_benchmark layout, see ../shared/data/cl_benchmark/README.md)."
        )
    tasks = order_tasks(order)
    return Stream.from_dir(
        data_dir,
        tasks=tasks,
        family="generation",
        instructions=paper_instructions(tasks, data_dir),
        max_train=max_train,
        max_test=max_test,
        seed=seed,
        **kwargs,
    )

"""Instruction rows for causal LMs: prompt templates, the built-in instructions of the
cl_benchmark tasks, how a record becomes an example, and how an example becomes the token
row prompt + " " + answer + eos (labels -100 on the prompt) that the generation family
trains on. Used by petl.families.generation (the family) and petl.ability."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from petl.errors import ConfigError, DataError
from petl.families.tokens import collate_tokens, masked_cross_entropy
from petl.tasks import PAIR_KEYS, TEXT_KEYS, Example

if TYPE_CHECKING:
    from petl.tasks import Task

IGNORE = -100
TEMPLATE = "{instruction}\n{input}\nAnswer:"
INPUT_KEYS = ("input", *TEXT_KEYS)
ANSWER_KEYS = ("output", "answer", "label")

# Instructions for the ../shared/data/cl_benchmark tasks (after O-LoRA's); the options are
# appended by `default_instruction`.
INSTRUCTIONS = {
    "agnews": "What is the topic of the news article?",
    "amazon": "What is the sentiment of the review?",
    "yelp": "What is the sentiment of the review?",
    "dbpedia": "What is the category of the article?",
    "sst-2": "What is the sentiment of the sentence?",
    "mnli": "What is the logical relationship between sentence 1 and sentence 2?",
    "rte": "What is the logical relationship between sentence 1 and sentence 2?",
    "qqp": "Do the first and second sentence ask the same question?",
    "wic": "Is the word used with the same meaning in both sentences?",
}


def default_instruction(task_name: str, labels: Sequence[str]) -> str:
    """The built-in instruction of a cl_benchmark task (a generic one for others), with
    its answer options: "What is the topic of the news article? Options: World, ..."."""
    head = INSTRUCTIONS.get(task_name, "Classify the text.")
    return f"{head} Options: {', '.join(labels)}." if labels else head


def instruction_example(record: Mapping[str, Any] | Example, where: str) -> Example:
    """An instruction record as an `Example` (text = input, label = answer). Keys: an input
    ('input', 'text', 'sentence', ...), an answer ('output', 'answer' or 'label'), an
    optional second text, and an optional per-record 'instruction' (put before the input)."""
    if isinstance(record, Example):
        return record
    key = next((k for k in INPUT_KEYS if k in record), None)
    answer_key = next((k for k in ANSWER_KEYS if k in record and record[k] is not None), None)
    if key is None or answer_key is None:
        raise DataError(
            f"{where}: an instruction record needs an input (one of {INPUT_KEYS}) and an answer "
            f"(one of {ANSWER_KEYS}); keys: {sorted(record)}."
        )
    text = str(record[key])
    if record.get("instruction"):
        text = f"{record['instruction']}\n{text}"
    pair_key = next((k for k in PAIR_KEYS if k in record), None)
    return Example(text, str(record[answer_key]), str(record[pair_key]) if pair_key else None)


def normalize(text: str) -> str:
    """Exact-match normalisation: whitespace collapsed and stripped, lower case."""
    return " ".join(text.split()).lower()


@dataclass
class LMRow:
    """prompt + " " + answer + eos as token ids; labels are -100 on the prompt. `label` is
    the answer's index in the task's labels (-1 if absent), which class-balanced replay
    groups by."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int
    task: int
    label: int
    answer: str
    token_type_ids: None = None


def eos_id(tokenizer: Any) -> int:
    if tokenizer.eos_token_id is None:
        raise ConfigError(
            "Generative tasks need a tokenizer with an eos token (tokenizer.eos_token)."
        )
    return int(tokenizer.eos_token_id)


def answer_ids(tokenizer: Any, answer: str) -> list[int]:
    """Token ids of an answer as it follows the prompt: " " + answer, then eos."""
    return [*tokenizer(" " + answer, add_special_tokens=False)["input_ids"], eos_id(tokenizer)]


def encode_instructions(
    task: Task,
    t: int,
    examples: Sequence[Example],
    tokenizer: Any,
    max_length: int,
    template: str = TEMPLATE,
) -> list[LMRow]:
    """Rows of prompt + answer; an input too long for `max_length` is cut at its end (the
    text after "{input}" in the template is kept)."""
    if not examples:
        return []
    tail_ids = tokenizer(template.split("{input}")[-1], add_special_tokens=False)["input_ids"]
    index = {label: i for i, label in enumerate(task.labels)}
    rows = []
    for e in examples:
        text = e.text if e.text_pair is None else f"{e.text}\n{e.text_pair}"
        prompt = template.format(instruction=task.instruction, input=text).lstrip("\n")
        ids = tokenizer(prompt)["input_ids"]
        answer = answer_ids(tokenizer, e.label)
        budget = max_length - len(answer)
        if len(ids) > budget:
            if budget - len(tail_ids) < 1:
                raise DataError(
                    f"max_length={max_length} leaves no room for the prompt of task {task.name!r} "
                    f"(answer {len(answer)} tokens): raise TrainConfig.max_length."
                )
            ids = ids[: budget - len(tail_ids)] + tail_ids
        rows.append(
            LMRow(
                ids + answer,
                [IGNORE] * len(ids) + answer,
                len(ids),
                t,
                index.get(e.label, -1),
                e.label,
            )
        )
    return rows


def collate_lm(rows: Sequence[LMRow], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels -100 on prompt and padding."""
    return collate_tokens(rows, pad_id)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy over positions whose target is not -100 (the answer
    tokens): their mean, or ("sum") the sum over sequences of each sequence's mean."""
    return masked_cross_entropy(logits[:, :-1], labels[:, 1:], reduction)

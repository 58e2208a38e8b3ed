"""Fixtures of the bench/CLI tests: a tiny BERT and tokenizer saved to disk (built by
tests/tiny_models.py, nothing downloaded), a tiny task folder in the cl_benchmark layout, and a helper
that writes a TOML config pointing at both."""

from __future__ import annotations

import json
import os
import random

import pytest
import torch

from tests.tiny_models import BERT_SPECIALS, bert_tokenizer, tiny_bert

WORDS = {
    "sport": "goal match team score win",
    "money": "bank price market stock trade",
    "good": "great love happy nice fine",
    "bad": "awful hate sad poor worst",
    "cat": "meow purr whisker paw fur",
    "dog": "bark woof tail bone fetch",
}
FILLER = ["the", "a", "is", "it", "this", "that", "and", "on"]
TASKS = {"topics": ["sport", "money"], "mood": ["good", "bad"], "pets": ["cat", "dog"]}


def _sentence(rng: random.Random, label: str) -> str:
    words = rng.sample(WORDS[label].split(), 3) + rng.sample(FILLER, 3)
    rng.shuffle(words)
    return " ".join(words)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A 2-layer, hidden-32 BERT classifier with a word-level tokenizer, saved to disk."""
    folder = str(tmp_path_factory.mktemp("tiny_bert"))
    words = sorted({w for ws in WORDS.values() for w in ws.split()} | set(FILLER))
    tokenizer = bert_tokenizer(words)
    tiny_bert(len(BERT_SPECIALS) + len(words)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
    """Three 2-class keyword tasks in the cl_benchmark layout (40 train, 20 test each)."""
    root = tmp_path_factory.mktemp("tiny_data")
    rng = random.Random(0)
    for task, labels in TASKS.items():
        folder = root / task
        folder.mkdir()
        (folder / "labels.json").write_text(json.dumps(labels))
        for split, n in (("train", 40), ("test", 20)):
            rows = [
                {"sentence": _sentence(rng, labels[i % 2]), "label": labels[i % 2]}
                for i in range(n)
            ]
            (folder / f"{split}.json").write_text(json.dumps(rows))
    return str(root)


@pytest.fixture
def write_config(tmp_path, tiny_model_dir, tiny_data_dir):
    """write_config(extra="", runs=..., seeds="[0]") -> path of a tiny bench config in tmp_path."""

    def write(
        extra: str = "", runs: str | None = None, name: str = "tiny.toml", seeds: str = "[0]"
    ) -> str:
        runs = (
            runs
            if runs is not None
            else (
                '[[runs]]\nname = "SeqLoRA"\nmethod = "lora"\n\n'
                '[[runs]]\nname = "LoRA+Replay"\nmethod = "lora"\nstrategies = ["replay"]\n'
            )
        )
        text = f"""
name = "tiny"
output_dir = "{tmp_path / "out"}"
seeds = {seeds}
{extra}

[model]
path = "{tiny_model_dir}"

[stream]
source = "dir"
data_dir = "{tiny_data_dir}"
tasks = ["topics", "mood", "pets"]
scenario = "class"

[train]
epochs = 2
batch_size = 8
lr = 1e-2
max_length = 16

[strategies.replay]
memory = 10

{runs}
"""
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


def pytest_configure(config):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

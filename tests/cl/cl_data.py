"""Helpers of the continual-learning tests: the vocabulary of small constructed task
streams, its tokenizer and tiny seeded BERT classifier (built by tests/tiny_models.py), and
the streams themselves. Nothing is downloaded."""

from __future__ import annotations

import random
from typing import Any

import torch

from tests.tiny_models import BERT_SPECIALS, bert_tokenizer, tiny_bert

SPECIALS = BERT_SPECIALS
# Weight init std of the tiny BERT. BERT's own 0.02 gives pooled features so small that a
# task needs hundreds of steps to be learned; 0.1 learns these toy tasks in ~20 steps.
INIT = 0.1
# Every class of the constructed streams owns a few tokens ("c<class>_<k>"); "n<k>" are
# noise tokens shared by all classes.
CLASS_TOKENS = 4
NUM_CLASSES = 8
WORDS = [f"c{c}_{k}" for c in range(NUM_CLASSES) for k in range(CLASS_TOKENS)] + [
    f"n{k}" for k in range(16)
]


def make_tokenizer() -> Any:
    """A fast word-level tokenizer over WORDS with BERT's single and pair templates."""
    return bert_tokenizer(WORDS, split_punctuation=False, token_type_ids=True)


def make_bert(seed: int = 0, hidden: int = 32, dropout: float = 0.1) -> torch.nn.Module:
    """A tiny BERT sequence classifier (2 layers, hidden 32) with seeded weights."""
    return tiny_bert(
        len(SPECIALS) + len(WORDS), seed=seed, hidden=hidden, dropout=dropout, init=INIT
    )


def class_examples(
    classes: list[int], n: int, rng: random.Random, length: int = 6, noise: int = 2
) -> list[dict[str, str]]:
    """n examples, classes in turn, each `length - noise` of its class's tokens plus noise."""
    out = []
    for i in range(n):
        c = classes[i % len(classes)]
        words = [f"c{c}_{rng.randrange(CLASS_TOKENS)}" for _ in range(length - noise)]
        words += [f"n{rng.randrange(16)}" for _ in range(noise)]
        rng.shuffle(words)
        out.append({"text": " ".join(words), "label": f"L{c}"})
    return out


def split_records(
    groups: list[list[int]], n_train: int, n_test: int, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """`{task: {"train", "test"}}` records for tasks whose classes are `groups`."""
    rng = random.Random(seed)
    return {
        f"t{k}": {
            "train": class_examples(classes, n_train, rng),
            "test": class_examples(classes, n_test, rng),
        }
        for k, classes in enumerate(groups)
    }


def interference_records(
    n_first: int = 48, n_later: int = 144, n_test: int = 40, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Two 2-class tasks whose inputs interfere: every example of one task also carries two
    tokens of a random class of the other task, as noise. Training the (longer) second task
    teaches the backbone to ignore the first task's tokens, so with task ids given
    (per-task heads) sequential training still forgets through the shared backbone."""
    rng = random.Random(seed)
    groups = [[0, 1], [2, 3]]

    def examples(k: int, n: int) -> list[dict[str, str]]:
        other = groups[1 - k]
        out = []
        for i in range(n):
            c = groups[k][i % 2]
            words = [f"c{c}_{rng.randrange(CLASS_TOKENS)}" for _ in range(3)]
            words += [f"c{rng.choice(other)}_{rng.randrange(CLASS_TOKENS)}" for _ in range(2)]
            rng.shuffle(words)
            out.append({"text": " ".join(words), "label": f"L{c}"})
        return out

    return {
        "t0": {"train": examples(0, n_first), "test": examples(0, n_test)},
        "t1": {"train": examples(1, n_later), "test": examples(1, n_test)},
    }

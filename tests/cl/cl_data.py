"""Helpers of the continual-learning tests: a word-level tokenizer with a pair template, a
tiny seeded BERT classifier, and small constructed task streams. Nothing is downloaded."""

from __future__ import annotations

import random
from typing import Any

import torch

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
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
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def make_bert(seed: int = 0, hidden: int = 32, dropout: float = 0.1) -> torch.nn.Module:
    """A tiny BERT sequence classifier (2 layers, hidden 32) with seeded weights."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=32,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=2,
        initializer_range=INIT,
    )
    return BertForSequenceClassification(config)


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

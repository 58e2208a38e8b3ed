"""Vocabularies, tiny models and tokenizers (built by tests/tiny_models.py) and small
generated streams for the token and generative families. Nothing is downloaded; every
factory is seeded."""

from __future__ import annotations

import random
from typing import Any

import petl
from tests.tiny_models import bert_tokenizer, tiny_bert, tiny_causal_lm
from tests.tiny_models import word_tokenizer as word_tokenizer_over

# ---- token classification: a WordPiece tokenizer that splits some words -----------------
NAMES = ["john", "mary", "johnson", "marys"]  # PER (johnson, marys split in two)
PLACES = ["paris", "rome", "york"]  # LOC ("new york" is two words)
ORGS = ["acme", "globex"]  # ORG
FILLER = ["the", "a", "met", "in", "at", "went", "to", "saw", "and", "with", "new", "today"]
PIECES = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "##son",
    "##s",
    *sorted({w for w in NAMES + PLACES + ORGS + FILLER if w not in ("johnson", "marys")}),
]


def wordpiece_tokenizer() -> Any:
    """A fast BERT-style tokenizer: [CLS] ... [SEP], "johnson" -> "john" "##son"."""
    return bert_tokenizer(PIECES[4:], specials=PIECES[:4], wordpiece=True, split_punctuation=False)


def bert_tagger(seed: int = 0) -> Any:
    return tiny_bert(len(PIECES), seed=seed, head="tok", num_labels=3, max_positions=64)


def ner_sentence(rnd: random.Random, types: list[str]) -> dict[str, list[str]]:
    """Filler words with one or two entities of the given types."""
    tokens: list[str] = []
    tags: list[str] = []
    for _ in range(rnd.randint(1, 2)):
        tokens += rnd.sample(FILLER[:10], 2)
        tags += ["O", "O"]
        kind = rnd.choice(types)
        if kind == "PER":
            tokens.append(rnd.choice(NAMES))
            tags.append("B-PER")
        elif kind == "LOC":
            if rnd.random() < 0.3:
                tokens += ["new", "york"]
                tags += ["B-LOC", "I-LOC"]
            else:
                tokens.append(rnd.choice(PLACES[:2]))
                tags.append("B-LOC")
        else:
            tokens.append(rnd.choice(ORGS))
            tags.append("B-ORG")
    return {"tokens": tokens, "tags": tags}


def ner_records(n_train: int = 48, n_test: int = 16, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Two class-incremental tasks: "per" annotates PER, "loc" adds LOC. Sentences of both
    tasks may mention both types; each task's data tags only its own (from_records with
    'types' turns the others into O)."""
    rnd = random.Random(seed)
    out = {}
    for name, types in (("per", ["PER"]), ("loc", ["LOC"])):
        mix = ["PER", "LOC"]
        out[name] = {
            "train": [ner_sentence(rnd, types if i % 3 else mix) for i in range(n_train)],
            "test": [ner_sentence(rnd, types) for _ in range(n_test)],
            "types": types,
        }
    return out


def ner_stream(scenario: str = "class", **kwargs: Any) -> petl.Stream:
    return petl.Stream.from_records(
        ner_records(**kwargs), scenario=scenario, family="tokens", val_fraction=0.0
    )


# ---- generation: a word-level tokenizer with eos and pad ---------------------------------
TOPIC = {
    "sports": ["ball", "goal", "team", "match"],
    "business": ["bank", "cash", "stock", "trade"],
}
MOOD = {"positive": ["good", "great", "fine", "nice"], "negative": ["bad", "awful", "poor", "sad"]}
COMMON = ["it", "was", "very", "the", "so", "and"]
INSTR = {"topic": "what topic ?", "mood": "what mood ?"}
GEN_WORDS = [
    "<pad>",
    "<eos>",
    "<unk>",
    "Answer:",
    "what",
    "topic",
    "mood",
    "?",
    *COMMON,
    *[w for d in (TOPIC, MOOD) for k, v in d.items() for w in (k, *v)],
]


def word_tokenizer() -> Any:
    """Whitespace word-level tokenizer; no BOS; eos "<eos>", pad "<pad>"."""
    return word_tokenizer_over(GEN_WORDS, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def causal_lm(kind: str = "llama", seed: int = 0) -> Any:
    """A tiny Llama-style or GPT-2-style causal LM over the word vocabulary."""
    return tiny_causal_lm(kind, len(GEN_WORDS), seed=seed, eos=GEN_WORDS.index("<eos>"))


def gen_records(n_train: int = 48, n_test: int = 16, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Two instruction tasks: the topic of a few words (sports/business), then their mood."""
    rnd = random.Random(seed)
    out = {}
    for name, groups in (("topic", TOPIC), ("mood", MOOD)):

        def record(groups: dict[str, list[str]] = groups) -> dict[str, str]:
            label = rnd.choice(sorted(groups))
            words = rnd.sample(groups[label], 2) + rnd.sample(COMMON, 2)
            rnd.shuffle(words)
            return {"input": " ".join(words), "output": label}

        out[name] = {
            "train": [record() for _ in range(n_train)],
            "test": [record() for _ in range(n_test)],
            "labels": sorted(groups),
            "instruction": INSTR[name],
        }
    return out


def gen_stream(scenario: str = "class", **kwargs: Any) -> petl.Stream:
    return petl.Stream.from_records(
        gen_records(**kwargs), scenario=scenario, family="generation", val_fraction=0.0
    )

"""Tiny models, tokenizers built in code, and small generated streams for the token and
generative families. Nothing is downloaded; every factory is seeded."""

from __future__ import annotations

import random
from typing import Any

import torch

import petl

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
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(PIECES)}
    tk = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


def bert_tagger(seed: int = 0) -> Any:
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(PIECES),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
        pad_token_id=0,
    )
    return BertForTokenClassification(config)


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
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(GEN_WORDS)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def causal_lm(kind: str = "llama", seed: int = 0) -> Any:
    """A tiny Llama-style or GPT-2-style causal LM over the word vocabulary."""
    import transformers

    torch.manual_seed(seed)
    common = {"vocab_size": len(GEN_WORDS), "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 1}
    if kind == "llama":
        config = transformers.LlamaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            **common,
        )
        return transformers.LlamaForCausalLM(config)
    config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, **common)
    return transformers.GPT2LMHeadModel(config)


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

"""Tiny seeded transformers models and a tokenizer built in code, for fast CPU tests.

Every factory builds its model from a config (hidden 32, 2 layers, 2 heads, vocab 100)
after `torch.manual_seed(seed)`, so two calls with the same seed give identical weights:
that is how tests get the "fresh base model" an adapter is loaded onto. `batch(name)`
gives a matching input batch. Nothing is downloaded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

VOCAB = 100
HIDDEN = 32
PAD = 0
EOS = 1
TEXT = (
    "the a cat dog sat on mat ran fast slow good bad movie film was is very not "
    "great awful plot actor loved hated it this that and but"
)
WORDS = TEXT.split()


def _text(hidden: int) -> dict[str, int]:
    return {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden,
    }


def bert_config(hidden: int = HIDDEN, num_labels: int = 3) -> Any:
    from transformers import BertConfig

    return BertConfig(
        **_text(hidden), max_position_embeddings=64, num_labels=num_labels, pad_token_id=PAD
    )


def gpt2_config(hidden: int = HIDDEN, num_labels: int = 3) -> Any:
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=VOCAB,
        n_embd=hidden,
        n_layer=2,
        n_head=2,
        n_positions=64,
        num_labels=num_labels,
        pad_token_id=PAD,
        bos_token_id=EOS,
        eos_token_id=EOS,
    )


def llama_config(hidden: int = HIDDEN, num_labels: int = 3) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        **_text(hidden),
        num_key_value_heads=2,
        max_position_embeddings=64,
        num_labels=num_labels,
        pad_token_id=PAD,
    )


def t5_config(hidden: int = HIDDEN, num_labels: int = 3) -> Any:
    from transformers import T5Config

    return T5Config(
        vocab_size=VOCAB,
        d_model=hidden,
        d_ff=2 * hidden,
        d_kv=hidden // 2,
        num_layers=2,
        num_heads=2,
        num_labels=num_labels,
        pad_token_id=PAD,
        decoder_start_token_id=PAD,
        eos_token_id=EOS,
    )


def vit_config(hidden: int = HIDDEN, num_labels: int = 3) -> Any:
    from transformers import ViTConfig

    return ViTConfig(
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        image_size=32,
        patch_size=8,
        num_channels=3,
        num_labels=num_labels,
    )


def _build(cls_name: str, config_fn: Callable[..., Any], seed: int, hidden: int) -> nn.Module:
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(config_fn(hidden))
    return model.eval()


# name -> (transformers class, config factory, input kind)
MODELS: dict[str, tuple[str, Callable[..., Any], str]] = {
    "bert_seq": ("BertForSequenceClassification", bert_config, "text"),
    "bert_tok": ("BertForTokenClassification", bert_config, "text"),
    "gpt2_seq": ("GPT2ForSequenceClassification", gpt2_config, "text"),
    "gpt2_lm": ("GPT2LMHeadModel", gpt2_config, "text"),
    "llama_lm": ("LlamaForCausalLM", llama_config, "text"),
    "llama_seq": ("LlamaForSequenceClassification", llama_config, "text"),
    "t5_gen": ("T5ForConditionalGeneration", t5_config, "seq2seq"),
    "t5_seq": ("T5ForSequenceClassification", t5_config, "text"),
    "vit": ("ViTForImageClassification", vit_config, "image"),
}


def make_model(name: str, seed: int = 0, hidden: int = HIDDEN) -> nn.Module:
    """A tiny model by short name (see MODELS), in eval mode, with seeded weights."""
    cls_name, config_fn, _ = MODELS[name]
    return _build(cls_name, config_fn, seed, hidden)


def batch(name: str, size: int = 2, length: int = 8, seed: int = 1) -> dict[str, torch.Tensor]:
    """A seeded input batch for the model `name`, with labels so the output has a loss."""
    kind = MODELS[name][2]
    gen = torch.Generator().manual_seed(seed)
    if kind == "image":
        return {
            "pixel_values": torch.randn(size, 3, 32, 32, generator=gen),
            "labels": torch.randint(0, 3, (size,), generator=gen),
        }
    ids = torch.randint(3, VOCAB, (size, length), generator=gen)
    mask = torch.ones_like(ids)
    ids[:, -1] = EOS  # T5 classifiers pool at the one <eos> of each example
    ids[0, -3] = EOS
    ids[0, -2:] = PAD  # some padding, so attention masks matter
    mask[0, -2:] = 0
    out = {"input_ids": ids, "attention_mask": mask}
    if name.endswith("_seq"):
        out["labels"] = torch.randint(0, 3, (size,), generator=gen)
    elif name.endswith("_tok"):
        out["labels"] = torch.randint(0, 3, (size, length), generator=gen)
    elif kind == "seq2seq":
        out["labels"] = torch.randint(3, VOCAB, (size, 4), generator=gen)
    else:  # causal LM
        out["labels"] = ids.masked_fill(mask == 0, -100)
    return out


def make_tokenizer() -> Any:
    """A word-level fast tokenizer over WORDS with BERT-style special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )

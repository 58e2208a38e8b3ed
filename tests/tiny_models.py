"""The one module of tiny test models and tokenizers: seeded transformers models built from
configs and fast tokenizers built in code, for fast CPU tests. Nothing is downloaded.

Every factory builds its model from a config (hidden 32, 2 layers, 2 heads) after
`torch.manual_seed(seed)`, so two calls with the same seed give identical weights: that is
how tests get the "fresh base model" an adapter is loaded onto.

- `make_model(name)` / `batch(name)`: one model per architecture (vocab 100) and a matching
  input batch, for the method matrix.
- `tiny_bert(vocab_size)`, `tiny_causal_lm(kind, vocab_size)`: the BERT classifiers and
  taggers, and the Llama/GPT-2 causal LMs, of the test folders' own vocabularies.
- `bert_tokenizer(words)`, `word_tokenizer(vocab)`: word-level (or WordPiece) fast
  tokenizers over a fixed vocabulary, ids in list order.

The test folders keep their vocabularies next to the data built from them (tests/cl/cl_data.py,
tests/families/family_data.py, tests/distributed/cl_worker.py, tests/bench/conftest.py) and
call these builders; do not write another tokenizer or model builder."""

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


def _text(hidden: int) -> dict[str, Any]:
    return {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden,
    }


def bert_config(hidden: int = HIDDEN, num_labels: int = 3, **overrides: Any) -> Any:
    """A 2-layer BERT config; `overrides` replace any field (vocab_size, dropout, ...)."""
    from transformers import BertConfig

    fields = {
        **_text(hidden),
        "max_position_embeddings": 64,
        "num_labels": num_labels,
        "pad_token_id": PAD,
    }
    return BertConfig(**{**fields, **overrides})


def gpt2_config(hidden: int = HIDDEN, num_labels: int = 3, **overrides: Any) -> Any:
    """A 2-layer GPT-2 config; `overrides` replace any field."""
    from transformers import GPT2Config

    fields = {
        "vocab_size": VOCAB,
        "n_embd": hidden,
        "n_layer": 2,
        "n_head": 2,
        "n_positions": 64,
        "num_labels": num_labels,
        "pad_token_id": PAD,
        "bos_token_id": EOS,
        "eos_token_id": EOS,
    }
    return GPT2Config(**{**fields, **overrides})


def llama_config(hidden: int = HIDDEN, num_labels: int = 3, **overrides: Any) -> Any:
    """A 2-layer Llama config; `overrides` replace any field."""
    from transformers import LlamaConfig

    fields = {
        **_text(hidden),
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
        "num_labels": num_labels,
        "pad_token_id": PAD,
    }
    return LlamaConfig(**{**fields, **overrides})


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


def build(cls_name: str, config: Any, seed: int = 0) -> nn.Module:
    """`transformers.<cls_name>(config)` with weights drawn after `torch.manual_seed(seed)`."""
    import transformers

    torch.manual_seed(seed)
    return getattr(transformers, cls_name)(config)


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
    return build(cls_name, config_fn(hidden), seed).eval()


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


HEADS = {"seq": "BertForSequenceClassification", "tok": "BertForTokenClassification"}


def tiny_bert(
    vocab_size: int,
    *,
    seed: int = 0,
    head: str = "seq",
    hidden: int = HIDDEN,
    num_labels: int = 2,
    max_positions: int = 32,
    dropout: float = 0.1,
    init: float = 0.02,
) -> nn.Module:
    """A 2-layer BERT classifier (`head` "seq") or tagger ("tok") over `vocab_size` ids.

    Args:
        vocab_size: Size of the word embedding (the tokenizer's vocabulary or more).
        seed: Seeds the weights; the same seed gives the same model.
        head: "seq" (one label per text) or "tok" (one label per token).
        hidden: Hidden size (the intermediate size is twice this).
        num_labels: Outputs of the classifier.
        max_positions: Longest input, in tokens.
        dropout: Hidden and attention dropout (0.0 for runs compared across processes).
        init: Weight init std; BERT's 0.02 gives pooled features so small that a toy task
            needs hundreds of steps, 0.1 learns one in about 20.

    Returns:
        The model, in train mode (as transformers builds it).
    """
    config = bert_config(
        hidden,
        num_labels,
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        initializer_range=init,
    )
    return build(HEADS[head], config, seed)


def tiny_causal_lm(kind: str, vocab_size: int, *, seed: int = 0, eos: int = EOS) -> nn.Module:
    """A 2-layer Llama-style (`kind` "llama") or GPT-2-style ("gpt2") causal LM over
    `vocab_size` ids; pad id PAD, and `eos` is also the BOS id."""
    # num_labels 2 is transformers' default: an LM's config keeps no label maps
    fields = {
        "vocab_size": vocab_size,
        "pad_token_id": PAD,
        "eos_token_id": eos,
        "bos_token_id": eos,
    }
    if kind == "llama":
        return build("LlamaForCausalLM", llama_config(HIDDEN, 2, **fields), seed)
    return build("GPT2LMHeadModel", gpt2_config(HIDDEN, 2, **fields), seed)


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_BERT_ROLES = {"[PAD]": "pad", "[UNK]": "unk", "[CLS]": "cls", "[SEP]": "sep", "[MASK]": "mask"}


def word_tokenizer(
    vocab: list[str],
    *,
    wordpiece: bool = False,
    split_punctuation: bool = False,
    bert_template: bool = False,
    model_input_names: list[str] | None = None,
    **special_tokens: str,
) -> Any:
    """A fast tokenizer over a fixed vocabulary: token `vocab[i]` has id i.

    Args:
        vocab: Every token, special ones included, in id order.
        wordpiece: WordPiece ("johnson" -> "john" "##son" when "##son" is in vocab) instead
            of one id per whole word.
        split_punctuation: Pre-tokenize as BERT does (punctuation is a word of its own);
            False splits on whitespace only, so "Answer:" can be one token.
        bert_template: Add "[CLS] $A [SEP]" (and "[CLS] $A [SEP] $B [SEP]" for pairs, the
            second segment with token type 1); "[CLS]" and "[SEP]" must be in vocab.
        model_input_names: The encodings' keys, if not transformers' default.
        **special_tokens: pad_token=..., unk_token=..., eos_token=...: tokens of vocab.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {tok: i for i, tok in enumerate(vocab)}
    unk = special_tokens["unk_token"]
    model = (
        models.WordPiece(ids, unk_token=unk) if wordpiece else models.WordLevel(ids, unk_token=unk)
    )
    tok = Tokenizer(model)
    if split_punctuation:
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    else:
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bert_template:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
        )
    extra = {"model_input_names": model_input_names} if model_input_names else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **special_tokens, **extra)


def bert_tokenizer(
    words: list[str],
    *,
    specials: list[str] = BERT_SPECIALS,
    wordpiece: bool = False,
    split_punctuation: bool = True,
    token_type_ids: bool = False,
) -> Any:
    """A BERT-style tokenizer: `specials` (ids 0, 1, ...) then `words`, "[CLS] $A [SEP]".

    Args:
        words: The vocabulary after the special tokens, in id order.
        specials: Which of BERT's "[PAD]" "[UNK]" "[CLS]" "[SEP]" "[MASK]" exist, in id
            order (the first four are needed).
        wordpiece: WordPiece pieces ("##son") in `words` split unknown whole words.
        split_punctuation: Punctuation is a token of its own (BERT's pre-tokenizer).
        token_type_ids: Encodings carry token_type_ids (for text pairs); off by default,
            since a GPT-2 given token_type_ids adds their embeddings to its inputs.
    """
    names = ["input_ids", "token_type_ids", "attention_mask"] if token_type_ids else None
    return word_tokenizer(
        [*specials, *words],
        wordpiece=wordpiece,
        split_punctuation=split_punctuation,
        bert_template=True,
        model_input_names=names,
        **{f"{_BERT_ROLES[s]}_token": s for s in specials},
    )


def make_tokenizer() -> Any:
    """A word-level fast tokenizer over WORDS with BERT-style special tokens."""
    return bert_tokenizer(WORDS)

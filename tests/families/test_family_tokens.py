"""Token classification (NER): file readers, class-incremental tag spaces, sub-word label
alignment, entity-level F1 against hand-computed cases, and end-to-end runs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import petl
from petl.errors import DataError
from petl.families.tokens import (
    IGNORE,
    TokenFamily,
    bio_labels,
    collate_tokens,
    encode_tokens,
    entity_type,
    f1_report,
    read_token_file,
)
from petl.stream import TokenExample
from tests.families.family_data import bert_tagger, ner_stream, wordpiece_tokenizer

CONLL = """-DOCSTART- -X- -X- O

John NNP B-NP B-PER
Smith NNP I-NP I-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O

Acme NNP B-NP B-ORG
hired VBD B-VP O
Mary NNP B-NP B-PER
"""


def test_bio_helpers() -> None:
    assert bio_labels(["PER", "LOC"]) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    assert entity_type("I-LOC") == "LOC" and entity_type("O") is None
    with pytest.raises(DataError, match="not a BIO tag"):
        entity_type("PERSON")


def test_readers_and_class_incremental_tag_space(tmp_path) -> None:
    conll = tmp_path / "a.conll"
    conll.write_text(CONLL)
    sentences = read_token_file(str(conll))
    assert sentences == [
        {
            "tokens": ["John", "Smith", "visited", "Paris", "."],
            "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"],
        },
        {"tokens": ["Acme", "hired", "Mary"], "tags": ["B-ORG", "O", "B-PER"]},
    ]
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text("\n".join(json.dumps(s) for s in sentences))
    assert read_token_file(str(jsonl)) == sentences

    stream = petl.Stream.from_ner(
        {
            "per": {"train": str(conll), "test": str(conll)},
            "loc": {"train": str(jsonl), "test": str(jsonl)},
        },
        types={"per": ["PER"], "loc": ["LOC", "ORG"]},
        val_fraction=0.0,
    )
    assert stream.family == "tokens"
    per, loc = stream.tasks
    assert per.labels == ["O", "B-PER", "I-PER"]
    assert loc.labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    # each task's data is tagged with its own types only: the others became O
    assert per.test[0].tags == ("B-PER", "I-PER", "O", "O", "O")
    assert loc.test[1].tags == ("B-ORG", "O", "O")
    # the head grows by the new types' B-/I- rows; O is shared
    assert stream.block_labels() == [["O", "B-PER", "I-PER"], ["B-LOC", "I-LOC", "B-ORG", "I-ORG"]]
    assert stream.label_ids(1) == {"O": 0, "B-LOC": 3, "I-LOC": 4, "B-ORG": 5, "I-ORG": 6}


def test_bad_token_records() -> None:
    with pytest.raises(DataError, match="2 tokens but 1 tags"):
        petl.Stream.from_records(
            {"x": {"train": [{"tokens": ["a", "b"], "tags": ["O"]}]}}, family="tokens"
        )
    with pytest.raises(DataError, match="outside its label set"):
        petl.Stream.from_records(
            {"x": {"train": [{"tokens": ["a"], "tags": ["B-PER"]}] * 4, "labels": ["O"]}},
            family="tokens",
        )


def test_first_subtoken_gets_the_label() -> None:
    tok = wordpiece_tokenizer()
    ids = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}
    ex = TokenExample(
        ("johnson", "met", "marys", "in", "new", "york"),
        ("B-PER", "O", "B-PER", "O", "B-LOC", "I-LOC"),
    )
    (row,) = encode_tokens(ids, 1, [ex], tok, max_length=32)
    assert tok.convert_ids_to_tokens(row.input_ids) == [
        "[CLS]",
        "john",
        "##son",
        "met",
        "mary",
        "##s",
        "in",
        "new",
        "york",
        "[SEP]",
    ]
    assert row.labels == [IGNORE, 1, IGNORE, 0, 1, IGNORE, 0, 3, 4, IGNORE]
    assert row.words == [0, 1, 2, 3, 4, 5] and row.n_words == 6
    assert row.task == 1 and row.label == 1  # the sentence's first entity tag

    # truncation keeps the alignment of the words that fit
    (short,) = encode_tokens(ids, 0, [ex], tok, max_length=5)
    assert short.labels == [IGNORE, 1, IGNORE, 0, IGNORE] and short.words == [0, 1]

    batch = collate_tokens([row, short], pad_id=0)
    assert batch["labels"].shape == (2, 10)
    assert batch["labels"][1, 5:].tolist() == [IGNORE] * 5
    assert batch["attention_mask"][1].tolist() == [1] * 5 + [0] * 5


def test_entity_f1_hand_computed() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-LOC"]]
    # gold entities: PER, LOC, PER; predicted: PER (right), LOC (wrong span/type)
    # precision 1/2, recall 1/3 -> F1 = 2 * (1/6) / (5/6) = 0.4
    f1, per_type = f1_report(gold, pred, ["PER", "LOC"])
    assert f1 == pytest.approx(0.4)
    assert per_type == {"PER": pytest.approx(2 / 3), "LOC": 0.0}
    # a partial span is a miss at entity level
    assert f1_report([["B-PER", "I-PER"]], [["B-PER", "O"]], ["PER"])[0] == 0.0


def test_score_counts_only_the_tasks_own_types() -> None:
    task = petl.Task(
        "loc",
        ["O", "B-LOC", "I-LOC"],
        train=[],
        test=[
            TokenExample(("a", "b", "c"), ("B-LOC", "O", "O")),
            TokenExample(("d", "e"), ("O", "B-LOC")),
        ],
    )
    learner = SimpleNamespace(stream=SimpleNamespace(tasks=[task]))
    family = TokenFamily()
    # a PER prediction (an earlier task's type) is not a false positive for the LOC task
    preds = [["B-LOC", "B-PER", "O"], ["O", "B-LOC"]]
    assert family.score(learner, 0, "test", preds) == 1.0
    preds = [["B-LOC", "B-LOC", "O"], ["O", "O"]]  # P = 1/2, R = 1/2
    assert family.score(learner, 0, "test", preds) == pytest.approx(0.5)
    assert family.details(learner, 0, "test", preds) == {"LOC": pytest.approx(0.5)}


def _tagger_learner(strategies=(), method=None, epochs=6, lr=3e-3) -> petl.Learner:
    return petl.Learner(
        bert_tagger(),
        wordpiece_tokenizer(),
        method=method,
        strategies=list(strategies),
        config=petl.TrainConfig(
            epochs=epochs, batch_size=8, lr=lr, warmup_ratio=0.0, progress=False, seed=0
        ),
    )


def test_tagger_learns_and_forgets_class_incrementally() -> None:
    stream = ner_stream()
    results = _tagger_learner().fit(stream)
    R = results.accuracy
    assert results.metric == ["f1", "f1"]
    assert R[0, 0] > 0.9 and R[1, 1] > 0.9  # each task is learned
    # naive CIL-NER forgets: task 1's data tags PER as O
    assert R[1, 0] < R[0, 0] - 0.5
    assert set(results.per_class["per"]) == {"PER"} and set(results.per_class["loc"]) == {"LOC"}
    assert results.per_class["loc"]["LOC"] == pytest.approx(R[1, 1])
    assert "per (f1)" in results.table()
    assert np.isfinite(list(v for v in results.summary().values() if isinstance(v, float))).all()


def test_task_incremental_tokens_route_per_token() -> None:
    stream = ner_stream(scenario="task", n_train=24, n_test=8)
    learner = _tagger_learner(epochs=4)
    results = learner.fit(stream)
    assert learner.model.heads.mode == "route"
    batch = next(iter(learner.batches(learner.rows(1, "test"))))
    with torch.no_grad():
        logits = learner.model(batch)
    assert logits.shape[:2] == batch["input_ids"].shape and logits.shape[-1] == 3
    assert results.accuracy.shape == (2, 2)

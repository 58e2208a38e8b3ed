"""Learner.predict, Learner.save / Learner.load (also in a fresh process) and petl.export
(loaded by plain transformers, without petl) on every family, with tiny seeded models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import torch

import petl
from petl.errors import CheckpointError, ConfigError
from tests.cl.cl_data import interference_records, make_bert, make_tokenizer, split_records
from tests.families.family_data import (
    bert_tagger,
    causal_lm,
    gen_stream,
    ner_stream,
    word_tokenizer,
    wordpiece_tokenizer,
)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TEXTS = ["c0_1 c0_2 c0_3 c0_0 n1 n5", "c3_0 c3_1 c3_2 c3_3 n2 n4", "c1_0 c1_1 n3 n0", "c2_1 c2_2"]


def run_python(code: str, *args: str) -> Any:
    """Runs `code` in a fresh interpreter (this checkout's petl first on the path) and
    returns the JSON it prints last."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def class_learner(strategies: list[Any], scenario: str = "class", method: Any = "lora") -> Any:
    records = (
        interference_records()
        if scenario == "task"
        else split_records([[0, 1], [2, 3]], n_train=48, n_test=16)
    )
    stream = petl.Stream.from_records(records, scenario, val_fraction=0)
    learner = petl.Learner(
        make_bert(),
        make_tokenizer(),
        method=method,
        method_options={"r": 4} if method == "lora" else {},
        strategies=strategies,
        config=petl.TrainConfig(
            epochs=4, lr=2e-2 if method else 2e-3, batch_size=16, progress=False
        ),
    )
    learner.fit(stream)
    return learner


@pytest.fixture(scope="module")
def trained() -> Any:
    """A class-incremental LoRA learner with EWC and replay (both keep state)."""
    return class_learner([petl.EWC(fisher_samples=8), petl.Replay(memory=8)])


def test_predict_texts_and_test_split(trained: Any) -> None:
    assert set(trained.predict(TEXTS)) <= {"L0", "L1", "L2", "L3"}
    assert trained.predict(TEXTS[1]) == ["L3"]  # one text; the last task is learned
    test = trained.predict(task="t1")
    examples = trained.stream.tasks[1].test
    assert trained.predict([e.text for e in examples]) == test  # texts = their test split
    gold = [e.label for e in examples]
    assert sum(p == g for p, g in zip(test, gold, strict=True)) / len(gold) > 0.7


@pytest.mark.slow  # a fresh interpreter imports torch and transformers (~10 s)
def test_save_then_load_in_a_new_process(trained: Any, tmp_path: Any) -> None:
    trained.save(str(tmp_path / "model"))
    code = (
        "import json, sys, torch; torch.set_num_threads(1)\n"
        "import petl\n"
        "learner = petl.Learner.load(sys.argv[1])\n"
        "texts = json.loads(sys.argv[2])\n"
        "print(json.dumps({'preds': learner.predict(texts), 'states': "
        "[s.state_dict().get('items') for s in learner.strategies]}))\n"
    )
    got = run_python(code, str(tmp_path / "model"), json.dumps(TEXTS))
    assert got["preds"] == trained.predict(TEXTS)
    assert got["states"][1] == [list(i) for i in trained.strategies[1].state_dict()["items"]]
    files = sorted(os.listdir(tmp_path / "model"))
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl"))], files  # safe formats


def test_loaded_learner_has_the_same_weights_and_strategy_state(trained: Any, tmp_path) -> None:
    trained.save(str(tmp_path))
    loaded = petl.Learner.load(str(tmp_path))
    own = trained.model.state_dict()
    for name, value in loaded.model.state_dict().items():
        # Bit-identity: the saved tensors are copied back unchanged.
        assert torch.equal(value.cpu(), own[name].cpu()), name
    rows = trained.rows(0, "test")
    torch.testing.assert_close(loaded.logits_for(rows), trained.logits_for(rows), rtol=0, atol=1e-6)
    fisher = trained.strategies[0].state_dict()
    for key, value in loaded.strategies[0].state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value.cpu(), fisher[key].cpu()), key


@pytest.mark.slow  # a fresh interpreter imports torch and transformers (~10 s)
def test_export_loads_without_petl_and_predicts_the_same(trained: Any, tmp_path: Any) -> None:
    petl.export(trained, str(tmp_path))
    code = (
        "import json, sys, torch; torch.set_num_threads(1)\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        "model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "batch = tok(json.loads(sys.argv[2]), padding=True, return_tensors='pt')\n"
        "ids = model(**batch).logits.argmax(-1).tolist()\n"
        "assert 'petl' not in sys.modules and 'peft' not in sys.modules\n"
        "print(json.dumps([model.config.id2label[i] for i in ids]))\n"
    )
    assert run_python(code, str(tmp_path), json.dumps(TEXTS)) == trained.predict(TEXTS)


def test_full_fine_tuning_exports_too(tmp_path: Any) -> None:
    from transformers import AutoModelForSequenceClassification

    learner = class_learner([], method=None)
    model = (
        AutoModelForSequenceClassification.from_pretrained(str(tmp_path))
        if petl.export(learner, str(tmp_path)) is not None
        else None
    )
    batch = learner.tokenizer(TEXTS, padding=True, return_tensors="pt")
    ids = model(**batch).logits.argmax(-1).tolist()
    assert [model.config.id2label[i] for i in ids] == learner.predict(TEXTS)


def test_task_incremental_with_task_adapters(tmp_path: Any) -> None:
    learner = class_learner([petl.TaskAdapters()], scenario="task")
    routed = learner.predict(TEXTS)  # no task id: the most confident task's head answers
    assert None not in routed and set(routed) <= {"L0", "L1", "L2", "L3"}
    before = [learner.predict(task=t) for t in range(2)]
    learner.save(str(tmp_path / "saved"))
    loaded = petl.Learner.load(str(tmp_path / "saved"))
    for t in range(2):
        texts = [e.text for e in learner.stream.tasks[t].test]
        assert loaded.predict(texts, task=t) == learner.predict(texts, task=t) == before[t]
    with pytest.raises(ConfigError, match="no test data"):
        loaded.predict(task=0)
    assert loaded.predict(TEXTS, task="t0") == learner.predict(TEXTS, task="t0")
    assert loaded.predict(TEXTS) == routed  # the stored adapters route the same after load
    # Task 0's stored adapter and head, merged: a plain model that answers like task 0.
    from transformers import AutoModelForSequenceClassification

    petl.export(learner, str(tmp_path / "t0"), task=0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "t0"))
    texts = [e.text for e in learner.stream.tasks[0].test]
    ids = model(**learner.tokenizer(texts, padding=True, return_tensors="pt")).logits.argmax(-1)
    assert [model.config.id2label[i] for i in ids.tolist()] == before[0]


def test_tokens_family(tmp_path: Any) -> None:
    from transformers import AutoModelForTokenClassification

    learner = petl.Learner(
        bert_tagger(),
        wordpiece_tokenizer(),
        method="lora",
        config=petl.TrainConfig(epochs=2, batch_size=8, lr=2e-2, progress=False),
    )
    learner.fit(ner_stream())
    sentences = ["john met mary in paris", ["acme", "went", "to", "rome"]]
    tags = learner.predict(sentences)
    assert [len(t) for t in tags] == [5, 4] and all(isinstance(x, str) for x in tags[0])
    learner.save(str(tmp_path / "saved"))
    assert petl.Learner.load(str(tmp_path / "saved")).predict(sentences) == tags
    petl.export(learner, str(tmp_path / "exported"))
    model = AutoModelForTokenClassification.from_pretrained(str(tmp_path / "exported"))
    rows = learner.rows(0, "test")
    logits = learner.logits_for(rows)
    batch = learner.family.collate(rows, learner.pad_id)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    torch.testing.assert_close(model(**inputs).logits, logits, rtol=1e-4, atol=1e-5)


def test_generation_family(tmp_path: Any) -> None:
    from transformers import AutoModelForCausalLM

    learner = petl.Learner(
        causal_lm(),
        word_tokenizer(),
        method="lora",
        config=petl.TrainConfig(epochs=1, batch_size=8, lr=1e-2, progress=False),
    )
    learner.fit(gen_stream(n_train=16, n_test=4))
    answers = learner.predict(["ball goal it was", "bad sad so the"], task="topic")
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    learner.save(str(tmp_path / "saved"))
    loaded = petl.Learner.load(str(tmp_path / "saved"))
    assert loaded.predict(["ball goal it was", "bad sad so the"], task="topic") == answers
    petl.export(learner, str(tmp_path / "exported"))
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "exported"))
    info = json.loads((tmp_path / "exported" / "petl_export.json").read_text())
    assert info["instructions"]["topic"] == "what topic ?"
    batch = learner.family.collate(learner.rows(0, "test"), learner.pad_id)
    torch.testing.assert_close(
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
        learner.model(batch),
        rtol=1e-4,
        atol=1e-5,
    )


def test_errors(tmp_path: Any) -> None:
    learner = petl.Learner(make_bert(), make_tokenizer(), config=petl.TrainConfig(progress=False))
    with pytest.raises(ConfigError, match="call fit"):
        learner.predict(TEXTS)
    with pytest.raises(CheckpointError, match=r"not a folder written by Learner\.save"):
        petl.Learner.load(str(tmp_path))


def test_bottleneck_export_says_why_not(tmp_path: Any) -> None:
    learner = class_learner([], method="bottleneck")
    with pytest.raises(ConfigError, match=r"Learner\.save"):
        petl.export(learner, str(tmp_path))

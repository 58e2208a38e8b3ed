"""TRL's SFTTrainer on a tiny causal LM (Llama-style, LoRA) over a 2-task instruction
stream (topic, then mood): with Replay it forgets the first task less than without.
SFTTrainer computes its own loss and collates with its own collator; petl supplies the
per-task training sets and measures exact match with label-restricted decoding."""

from __future__ import annotations

from typing import Any

import pytest

import petl
from petl.families.generation import GenerationFamily
from petl.integrations.transformers import ContinualCallback
from tests.extras import need
from tests.families.family_data import causal_lm, gen_stream, word_tokenizer

trl = need("trl", "petl[trl]")

pytestmark = pytest.mark.slow  # about 80 s: two runs of two tasks


def forgetting(strategies: list[Any], folder: str) -> petl.Results:
    tok = word_tokenizer()
    stream = gen_stream(n_train=48, n_test=40)
    cl = ContinualCallback(
        stream, strategies, family=GenerationFamily(decoding="labels"), max_length=32
    )
    args = trl.SFTConfig(
        output_dir=folder,
        per_device_train_batch_size=8,
        num_train_epochs=8,
        learning_rate=3e-2,
        seed=0,
        max_length=32,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = trl.SFTTrainer(
        model=petl.apply(causal_lm("llama", seed=0), "lora", r=4),
        args=args,
        processing_class=tok,
        train_dataset=cl.task_dataset(tok),  # SFTTrainer demands one; fit sets each task's
    )
    return cl.fit(trainer)


def test_sft_with_replay_forgets_less(tmp_path: Any) -> None:
    naive = forgetting([], str(tmp_path / "naive"))
    replay = forgetting([petl.Replay(memory=16, policy="class_balanced")], str(tmp_path / "r"))
    report = f"naive {naive.accuracy.tolist()}, replay {replay.accuracy.tolist()}"
    assert naive.accuracy[0, 0] >= 0.9, report  # the first task is learned ...
    assert naive.summary()["forgetting"] >= 0.4, report  # ... and lost without replay
    assert replay.summary()["forgetting"] <= naive.summary()["forgetting"] - 0.25, report
    assert naive.info["trainer"] == "SFTTrainer"

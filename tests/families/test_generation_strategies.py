"""The strategies test_family_strategies.py leaves out, on the generation family: SeqFT (full
fine-tuning, no method), OSF (peft's OSF tuner, re-split between tasks) and multitask
(Joint), each end to end on a tiny causal LM."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import petl
from petl.families.generation import GenerationFamily
from petl.strategies.osf import osf_layers
from tests.families.family_data import causal_lm, gen_stream, word_tokenizer

CONFIG = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "warmup_ratio": 0.0, "progress": False}


def osf_method() -> Any:
    from peft import OSFConfig

    return OSFConfig(effective_rank=0.5, target_modules="all-linear")


CASES = {
    "seqft": (None, lambda: []),
    "osf": (osf_method, lambda: [petl.OSF()]),
    "osf_by_name": ("osf", lambda: [petl.OSF(rank_step=4)]),  # the registry's method
    "multitask": ("lora", lambda: [petl.Joint()]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_strategy_on_generation(name: str) -> None:
    method, strategies = CASES[name]
    learner = petl.Learner(
        causal_lm("llama"),
        word_tokenizer(),
        method=method() if callable(method) else method,
        method_options={"effective_rank": 0.5} if method == "osf" else None,
        strategies=strategies(),
        config=petl.TrainConfig(**CONFIG, max_length=32, seed=0),
        family=GenerationFamily(decoding="labels"),
    )
    results = learner.fit(gen_stream(n_train=24, n_test=8))
    R = results.accuracy
    assert R.shape == (2, 2) and np.all((R >= 0) & (R <= 1))
    assert results.metric == ["exact_match", "exact_match"]
    if name.startswith("osf"):  # re-split after task 1: frozen rank grown, same layer names
        layers = osf_layers(learner.model)
        assert layers
        for m in layers.values():
            assert m.effective_rank["default"] > min(m.get_base_layer().weight.shape) // 2

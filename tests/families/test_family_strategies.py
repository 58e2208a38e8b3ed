"""Every strategy runs on both new families (2-task streams, tiny models, LoRA), its hooks
run and leave their effects (tests/hook_checks.py), and the strategies that depend on the
family (LwF's teacher, EWC's Fisher, TaskAdapters' rule) do what they say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import petl
from petl.families.generation import GenerationFamily
from tests.families.family_data import (
    bert_tagger,
    causal_lm,
    gen_stream,
    ner_stream,
    word_tokenizer,
    wordpiece_tokenizer,
)
from tests.hook_checks import problems, record

STRATEGIES: dict[str, Callable[[], list[Any]]] = {
    "naive": lambda: [],
    "ewc": lambda: [petl.EWC(lam=100.0, fisher_samples=8)],
    "replay": lambda: [petl.Replay(memory=8, policy="class_balanced")],
    "lwf": lambda: [petl.LwF()],
    "task_adapters": lambda: [petl.TaskAdapters()],
    "olora": lambda: [petl.OLoRA(lam_orth=0.1, lam_l2=0.01)],
    "joint": lambda: [petl.Joint()],
}
CONFIG = {
    "epochs": 2,
    "batch_size": 8,
    "lr": 1e-2,
    "warmup_ratio": 0.0,
    "progress": False,
    "seed": 0,
}


def tokens_learner(strategies: list[Any]) -> petl.Learner:
    return petl.Learner(
        bert_tagger(),
        wordpiece_tokenizer(),
        method="lora",
        method_options={"r": 4, "target_modules": ["query", "value"]},
        strategies=strategies,
        config=petl.TrainConfig(**CONFIG),
    )


def generation_learner(
    strategies: list[Any], kind: str = "llama", decoding: str = "labels"
) -> petl.Learner:
    return petl.Learner(
        causal_lm(kind),
        word_tokenizer(),
        method="lora",
        method_options={"r": 4},
        strategies=strategies,
        config=petl.TrainConfig(**CONFIG, max_length=32),
        family=GenerationFamily(decoding=decoding),
    )


def check(results: petl.Results, metric: str) -> None:
    R = results.accuracy
    assert R.shape == (2, 2) and np.all((R >= 0) & (R <= 1))
    assert results.metric == [metric, metric]
    assert all(np.isfinite(v) for v in results.summary().values() if isinstance(v, float))


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_on_token_classification(name: str) -> None:
    strategies = record(STRATEGIES[name]())
    results = tokens_learner(strategies).fit(ner_stream(n_train=24, n_test=8))
    check(results, "f1")
    assert problems(strategies) == []


# Llama and GPT-2 alternate, and so do greedy and label-restricted decoding.
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_on_generation(name: str) -> None:
    index = list(STRATEGIES).index(name)
    strategies = record(STRATEGIES[name]())
    learner = generation_learner(
        strategies,
        kind=("llama", "gpt2")[index % 2],
        decoding=("labels", "greedy")[index // 2 % 2],
    )
    check(learner.fit(gen_stream(n_train=24, n_test=8)), "exact_match")
    assert problems(strategies) == []


def test_task_adapters_route_generation_by_task_id() -> None:
    adapters = petl.TaskAdapters()
    learner = generation_learner([adapters])
    results = learner.fit(gen_stream(scenario="task", n_train=24, n_test=8))
    check(results, "exact_match")
    # with task ids, task 0 is answered by adapter 0 alone
    current = {n: p.detach().clone() for n, p in adapters._adapter(learner).items()}
    adapters._load(learner, adapters._store[0])
    alone = learner.family.predict(learner, 0, learner.rows(0, "test"))[0]
    adapters._load(learner, current)
    assert adapters.predict(learner, 0, "test") == alone


@pytest.mark.parametrize("family", ["tokens", "generation"])
def test_lwf_teacher_is_the_pre_task_model(family: str) -> None:
    """At the start of task 1 the student equals the teacher (KD = 0); once the trainable
    weights move, the distillation term is positive."""
    lwf = petl.LwF()
    if family == "tokens":
        learner, stream = tokens_learner([lwf]), ner_stream(n_train=8, n_test=4)
    else:
        learner, stream = generation_learner([lwf]), gen_stream(n_train=8, n_test=4)
    learner.setup(stream)
    learner._activate_heads(1)
    learner.items = [(1, i) for i in range(len(learner.rows(1)))]
    lwf.before_task(learner, 1)
    batch = next(iter(learner.batches(learner.rows(1))))
    learner.model.eval()
    logits = learner.model(batch)
    assert lwf._token_kd(learner, batch, logits).item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for p in learner.trainable_parameters().values():
            p.add_(0.05 * torch.randn_like(p))
    logits = learner.model(batch)
    kd = lwf._token_kd(learner, batch, logits)
    assert kd.item() > 1e-4 and kd.requires_grad


def test_ewc_fisher_from_the_lm_loss() -> None:
    from petl.strategies.ewc import empirical_fisher

    learner = generation_learner([])
    learner.setup(gen_stream(n_train=8, n_test=4))
    fisher = empirical_fisher(learner, 0, samples=4)
    assert set(fisher) == set(learner.trainable_parameters())
    assert sum(float(f.sum()) for f in fisher.values()) > 0


def test_prototype_routing_refuses_families_without_one_feature_per_input() -> None:
    learner = generation_learner([petl.TaskAdapters(route="prototype")])
    with pytest.raises(petl.ConfigError, match="'generation' family is not supported"):
        learner.fit(gen_stream())


@pytest.mark.parametrize("head", [petl.NCM, petl.FeCAM, petl.RanPAC])
def test_statistic_heads_refuse_families_without_one_feature_per_input(head: type) -> None:
    learner = generation_learner([head()])
    with pytest.raises(petl.ConfigError, match="'generation' family is not supported"):
        learner.fit(gen_stream())

"""bf16 mixed precision (CPU autocast) and gradient checkpointing on a tiny BERT.

Accelerate keeps one AcceleratorState per process and refuses a second precision, so each
test resets it before and after (as accelerate's own tests do)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import petl
from tests.distributed import cl_worker


@pytest.fixture
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _learner(model: torch.nn.Module | None = None, **config) -> petl.Learner:
    cfg = petl.TrainConfig(
        epochs=4,
        batch_size=8,
        eval_batch_size=8,
        lr=3e-2,
        seed=0,
        num_threads=1,
        progress=False,
        warmup_ratio=0.0,
        **config,
    )
    return petl.Learner(
        model or cl_worker.make_model(),
        tokenizer=cl_worker.make_tokenizer(),
        method="lora",
        method_options={"r": 4, "target_modules": ["query", "value"]},
        strategies=[petl.EWC(lam=100.0, fisher_samples=8)],
        config=cfg,
    )


def test_bf16_autocast_on_cpu(fresh_accelerate_state):
    stream = cl_worker.make_stream("class")
    model = cl_worker.make_model()
    seen: set[torch.dtype] = set()  # output dtypes of a projection while training
    query = model.bert.encoder.layer[0].attention.self.query  # PEFT keeps it as base layer
    query.register_forward_hook(lambda m, a, out: seen.add(out.dtype) if m.training else None)
    learner = _learner(model, mixed_precision="bf16")
    results = learner.fit(stream)
    assert learner.accelerator.mixed_precision == "bf16"
    assert seen == {torch.bfloat16}  # every training forward ran under bf16 autocast
    assert results.accuracy.shape == (3, 3)
    assert np.isfinite(results.accuracy).all()
    # weights stay fp32 (autocast, not a bf16 model) and training moved them
    lora = [p for n, p in learner.model.named_parameters() if "lora_B" in n]
    assert lora and all(p.dtype == torch.float32 for p in lora)
    assert any(p.abs().sum() > 0 for p in lora)
    assert results.accuracy.diagonal().max() > 0.9  # tasks are still learned in bf16


def test_gradient_checkpointing_recomputes_and_matches(fresh_accelerate_state):
    from accelerate.state import AcceleratorState

    stream = cl_worker.make_stream("class")
    plain = _learner().fit(stream)
    AcceleratorState._reset_state(reset_partial_state=True)
    model = cl_worker.make_model()
    calls: list[bool] = []
    query = model.bert.encoder.layer[0].attention.self.query  # inside the checkpointed layer
    query.register_forward_hook(lambda m, a, o: calls.append(m.training))
    learner = _learner(model, gradient_checkpointing=True)
    checkpointed = learner.fit(stream)
    assert model.bert.encoder.layer[0].gradient_checkpointing
    # every training forward inside the layer ran a second time in the backward
    assert sum(calls) == 2 * learner.global_step
    # recomputation changes nothing numerically (no dropout in this model)
    np.testing.assert_allclose(checkpointed.accuracy, plain.accuracy, atol=1e-6)


def test_an_earlier_accelerators_precision_does_not_leak_into_petl(fresh_accelerate_state):
    """accelerate's state is process-wide: a Trainer made earlier in the process (TRL's
    SFTConfig defaults to bf16) would otherwise make a run asked for fp32 train in bf16."""
    from accelerate import Accelerator

    Accelerator(mixed_precision="bf16", cpu=True)
    learner = _learner()
    with pytest.warns(UserWarning, match="resets it to 'no'"):
        learner.setup(cl_worker.make_stream("class"))
    assert learner.accelerator.mixed_precision == "no"
    again = _learner(mixed_precision="bf16")  # each run gets what it asks for
    with pytest.warns(UserWarning, match="resets it to 'bf16'"):
        again.setup(cl_worker.make_stream("class"))
    assert again.accelerator.mixed_precision == "bf16"


def test_the_launchers_precision_is_taken_when_the_config_leaves_it(
    fresh_accelerate_state, monkeypatch
):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # as `accelerate launch` sets it
    learner = _learner()
    learner.setup(cl_worker.make_stream("class"))
    assert learner.accelerator.mixed_precision == "bf16"

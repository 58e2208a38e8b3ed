"""EWC: the penalty against a direct computation, online accumulation, and the Fisher as
the mean of squared per-example gradients over trainable parameters only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

import petl
from petl.errors import ConfigError
from petl.strategies import ewc as ewc_module
from tests.cl.cl_data import make_bert, split_records


def tensors(
    seed: int, shapes: dict[str, tuple[int, ...]], positive: bool = False
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {n: torch.randn(*s, generator=gen, dtype=torch.float64) for n, s in shapes.items()}
    return {n: v.abs() for n, v in out.items()} if positive else out


SHAPES = {"a.weight": (3, 4), "b.bias": (5,)}


def test_penalty_equals_direct_computation() -> None:
    strategy = petl.EWC(lam=7.0)
    terms = [
        (tensors(1, SHAPES, True), tensors(2, SHAPES)),
        (tensors(3, SHAPES, True), tensors(4, SHAPES)),
    ]
    strategy._terms = terms
    params = tensors(5, SHAPES)
    direct = sum(
        float((fisher[n][i] * (params[n][i] - anchor[n][i]) ** 2).sum())
        for fisher, anchor in terms
        for n in SHAPES
        for i in range(SHAPES[n][0])
    )
    assert float(strategy.penalty(params)) == pytest.approx(direct, rel=1e-12)
    learner = SimpleNamespace(trainable_parameters=lambda: params)
    loss = torch.tensor(0.25, dtype=torch.float64)
    assert float(strategy.loss(learner, {}, None, loss)) == pytest.approx(0.25 + 7.0 / 2 * direct)
    # parameters that are not trainable now (frozen heads, other adapters) add nothing
    only_a = {"a.weight": params["a.weight"]}
    direct_a = sum(
        float((f["a.weight"] * (params["a.weight"] - a["a.weight"]) ** 2).sum()) for f, a in terms
    )
    assert float(strategy.penalty(only_a)) == pytest.approx(direct_a)
    assert petl.EWC().loss(learner, {}, None, loss) is loss  # no task consolidated yet


@pytest.mark.parametrize("mode", ["separate", "online"])
def test_online_mode_accumulates_and_separate_mode_keeps_terms(monkeypatch: Any, mode: str) -> None:
    fishers = [tensors(10 + k, SHAPES, True) for k in range(3)]
    params = [tensors(20 + k, SHAPES) for k in range(3)]
    monkeypatch.setattr(ewc_module, "empirical_fisher", lambda learner, t, samples: fishers[t])
    strategy = petl.EWC(lam=1.0, mode=mode, decay=0.5)
    for t in range(3):
        learner = SimpleNamespace(trainable_parameters=lambda t=t: params[t])
        strategy.after_task(learner, t)
    if mode == "separate":
        assert len(strategy._terms) == 3
        for t, (fisher, anchor) in enumerate(strategy._terms):  # stored copies: exact
            assert all(
                torch.equal(fisher[n], fishers[t][n]) and torch.equal(anchor[n], params[t][n])
                for n in SHAPES
            )
        return
    ((fisher, anchor),) = strategy._terms
    for n in SHAPES:  # F = F2 + 0.5 (F1 + 0.5 F0), anchor = the latest parameters
        assert torch.allclose(
            fisher[n], fishers[2][n] + 0.5 * (fishers[1][n] + 0.5 * fishers[0][n])
        )
        assert torch.equal(anchor[n], params[2][n])
    restored = petl.EWC(lam=1.0, mode=mode, decay=0.5)
    restored.load_state_dict(strategy.state_dict())
    probe = tensors(99, SHAPES)
    assert float(restored.penalty(probe)) == pytest.approx(float(strategy.penalty(probe)))


def fitted_learner(tok: Any, method: Any = "lora") -> petl.Learner:
    stream = petl.Stream.from_records(split_records([[0, 1], [2, 3]], 12, 4), val_fraction=0)
    learner = petl.Learner(
        make_bert(seed=2),
        tok,
        method=method,
        method_options={"r": 2} if method else None,
        config=petl.TrainConfig(progress=False),
    )
    learner.setup(stream)
    learner._activate_heads(1)  # both head blocks live: gradients reach every trainable tensor
    return learner


@pytest.mark.parametrize("method", ["lora", None])
def test_fisher_is_mean_of_squared_per_example_gradients(tok: Any, method: Any) -> None:
    learner = fitted_learner(tok, method)
    rows = learner.rows(0)
    fisher = ewc_module.empirical_fisher(learner, 0, samples=len(rows))
    params = learner.trainable_parameters()
    assert fisher.keys() == params.keys()  # trainable parameters only
    if method == "lora":
        assert all("lora_" in n or n.startswith("heads.") for n in fisher)
    # Direct: one padded batch, per-example losses, one autograd.grad per example.
    model = learner.model.eval()
    batch = next(iter(learner.batches(rows, batch_size=len(rows))))
    losses = torch.nn.functional.cross_entropy(
        model(batch).double(), batch["labels"], reduction="none"
    )
    names = list(params)
    expected = {n: torch.zeros_like(params[n], dtype=torch.float64) for n in names}
    for i in range(len(rows)):
        grads = torch.autograd.grad(
            losses[i], [params[n] for n in names], retain_graph=True, allow_unused=True
        )
        for n, g in zip(names, grads, strict=True):
            if g is not None:
                expected[n] += g.double() ** 2
    for n in names:
        assert torch.allclose(fisher[n].double(), expected[n] / len(rows), rtol=1e-3, atol=1e-9), n
    # Not the square of the mean gradient (the classic mistake): that is much smaller.
    mean_grad = torch.autograd.grad(losses.mean(), [params[n] for n in names], allow_unused=True)
    total_fisher = sum(float(f.sum()) for f in fisher.values())
    total_sq_mean = sum(float((g**2).sum()) for g in mean_grad if g is not None)
    assert total_fisher > 2 * total_sq_mean


def test_minibatch_fisher_is_mean_of_squared_minibatch_gradients(tok: Any) -> None:
    # Avalanche's estimate (fisher_batch_size > 1): square each mini-batch's mean gradient.
    learner = fitted_learner(tok)
    rows = learner.rows(0)
    assert len(rows) % 10 != 0  # an uneven last batch counts as one batch
    fisher = ewc_module.minibatch_fisher(learner, 0, samples=len(rows), batch_size=10)
    params = learner.trainable_parameters()
    model = learner.model.eval()
    expected = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in params.items()}
    starts = range(0, len(rows), 10)
    for start in starts:
        batch = next(iter(learner.batches(rows[start : start + 10], batch_size=10)))
        loss = torch.nn.functional.cross_entropy(model(batch), batch["labels"])
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for n, g in zip(params, grads, strict=True):
            if g is not None:
                expected[n] += g.double() ** 2
    for n in params:
        torch.testing.assert_close(
            fisher[n].double(), expected[n] / len(starts), rtol=1e-4, atol=1e-10
        )
    # batch size 1 is the empirical Fisher, and the strategy option reaches the estimate
    one = ewc_module.minibatch_fisher(learner, 0, samples=len(rows), batch_size=1)
    per_example = ewc_module.empirical_fisher(learner, 0, samples=len(rows))
    for n in params:
        torch.testing.assert_close(one[n], per_example[n], rtol=0, atol=0)  # same computation
    strategy = petl.EWC(fisher_samples=len(rows), fisher_batch_size=10)
    strategy.after_task(learner, 0)
    for n in params:
        torch.testing.assert_close(strategy._terms[0][0][n], fisher[n], rtol=1e-6, atol=1e-12)


def test_fisher_subset_is_seeded(tok: Any) -> None:
    learner = fitted_learner(tok)
    picked = ewc_module.fisher_rows(learner, 0, 5)
    assert len(picked) == 5 and picked == ewc_module.fisher_rows(learner, 0, 5)
    assert all(r in learner.rows(0) for r in picked)
    assert ewc_module.fisher_rows(learner, 0, 100) == learner.rows(0)


def test_bad_ewc_options() -> None:
    for kwargs in (
        {"mode": "offline"},
        {"lam": -1},
        {"fisher_samples": 0},
        {"fisher_batch_size": 0},
        {"decay": 1.5},
    ):
        with pytest.raises(ConfigError):
            petl.EWC(**kwargs)

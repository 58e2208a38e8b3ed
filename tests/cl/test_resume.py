"""Resumable runs: a run killed mid-task or between tasks and started again with the same
arguments ends with the same accuracy matrix and weights as an uninterrupted run.
Checkpoints hold only safetensors and JSON, and belong to one configuration."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import torch

import petl
from petl import CheckpointError
from petl.strategies.base import Strategy
from tests.cl.cl_data import make_bert, split_records


class Killed(RuntimeError):
    pass


class Kill(Strategy):
    """Raises at a given optimizer step or before a given task, like a kill would stop the
    run there. Its settings are private, so armed and disarmed runs share a fingerprint."""

    name = "kill"

    def __init__(self, step: int | None = None, before_task: int | None = None) -> None:
        self._step, self._task = step, before_task

    def after_step(self, learner: Any) -> None:
        if learner.global_step == self._step:
            raise Killed(f"step {self._step}")

    def before_task(self, learner: Any, t: int) -> None:
        if t == self._task:
            raise Killed(f"before task {t}")


STRATEGIES: dict[str, Callable[[], list[Any]]] = {
    "ewc+replay": lambda: [petl.EWC(lam=50.0, fisher_samples=8), petl.Replay(memory=8)],
    "lwf": lambda: [petl.LwF()],
    "task_adapters": lambda: [petl.TaskAdapters()],
    "olora": lambda: [petl.OLoRA(lam_orth=0.1, lam_l2=0.01)],
    # the catalog: state kept between tasks and, for SI, within a task (path integral)
    "si+mas": lambda: [petl.SI(lam=1.0), petl.MAS(lam=1.0, samples=8)],
    "agem": lambda: [petl.AGEM(memory=8, sample_size=4)],
    "gem": lambda: [petl.GEM(patterns_per_task=4)],
    "der": lambda: [petl.DER(memory=8, batch_size=4)],
    "er_ace": lambda: [petl.ERACE(memory=8, batch_size=4)],
    "icarl": lambda: [petl.ICaRL(memory=8)],
    "gdumb": lambda: [petl.GDumb(memory=24)],
    "cumulative": lambda: [petl.Cumulative(reset=True)],
}
# 2 tasks x 24 training examples, batch 8, 3 epochs: steps 1-9 are task 0, 10-18 task 1.
CONFIG = {"epochs": 3, "batch_size": 8, "lr": 3e-2, "progress": False, "seed": 3}


def learner(tok: Any, kind: str, kill: Kill, **config: Any) -> petl.Learner:
    return petl.Learner(
        make_bert(seed=3),
        tok,
        method="lora",
        method_options={"r": 2},
        strategies=[*STRATEGIES[kind](), kill],
        config=petl.TrainConfig(**{**CONFIG, **config}),
    )


def stream() -> petl.Stream:
    return petl.Stream.from_records(split_records([[0, 1], [2, 3]], 24, 8, seed=5), val_fraction=0)


def weights(lrn: petl.Learner) -> dict[str, torch.Tensor]:
    # Every parameter: OLoRA folds into frozen base weights, TaskAdapters swaps adapters.
    return {n: p.detach().clone() for n, p in lrn.model.named_parameters()}


_REFERENCE: dict[str, tuple[Any, dict[str, torch.Tensor]]] = {}


def reference(tok: Any, kind: str) -> tuple[Any, dict[str, torch.Tensor]]:
    if kind not in _REFERENCE:
        lrn = learner(tok, kind, Kill())
        _REFERENCE[kind] = (lrn.fit(stream()), weights(lrn))
    return _REFERENCE[kind]


def killed_then_resumed(
    tok: Any, kind: str, kill: Kill, ckpt: str, **config: Any
) -> tuple[Any, Any]:
    with pytest.raises(Killed):
        learner(tok, kind, kill, **config).fit(stream(), checkpoint_dir=ckpt)
    again = learner(tok, kind, Kill(), **config)  # a fresh process would start like this
    return again.fit(stream(), checkpoint_dir=ckpt), weights(again)


def assert_same(got: tuple[Any, Any], want: tuple[Any, Any]) -> None:
    (res, w), (ref, ref_w) = got, want
    assert res.accuracy.tolist() == ref.accuracy.tolist()
    assert res.initial.tolist() == ref.initial.tolist()
    assert res.per_class == ref.per_class
    assert w.keys() == ref_w.keys()
    # Bit identity is the property: the resumed run repeats the same computations on the
    # same shapes as the uninterrupted one (same batches, seeds and kernels).
    for name in w:
        assert torch.equal(w[name], ref_w[name]), name


def checkpoint_files(root: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
    )


@pytest.mark.slow  # three runs per strategy
@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_resume_mid_second_task_equals_uninterrupted(tok: Any, tmp_path: Any, kind: str) -> None:
    ckpt = str(tmp_path / "run")
    got = killed_then_resumed(
        tok, kind, Kill(step=15), ckpt, checkpoint_every=4
    )  # last ckpt: step 12
    assert_same(got, reference(tok, kind))
    files = checkpoint_files(ckpt)
    assert files and all(f.endswith((".safetensors", ".json")) for f in files), files


@pytest.mark.slow  # three runs
def test_resume_mid_first_task_and_between_tasks(tok: Any, tmp_path: Any) -> None:
    want = reference(tok, "ewc+replay")
    got = killed_then_resumed(
        tok, "ewc+replay", Kill(step=5), str(tmp_path / "a"), checkpoint_every=2
    )
    assert_same(got, want)
    got = killed_then_resumed(tok, "ewc+replay", Kill(before_task=1), str(tmp_path / "b"))
    assert_same(got, want)


@pytest.mark.slow  # two runs
def test_resume_after_the_end_returns_the_same_results(tok: Any, tmp_path: Any) -> None:
    ckpt = str(tmp_path / "run")
    first = learner(tok, "ewc+replay", Kill()).fit(stream(), checkpoint_dir=ckpt)
    again = learner(tok, "ewc+replay", Kill()).fit(stream(), checkpoint_dir=ckpt)
    assert again.accuracy.tolist() == first.accuracy.tolist()
    assert again.accuracy.tolist() == reference(tok, "ewc+replay")[0].accuracy.tolist()


def test_checkpoint_of_another_configuration_is_refused(tok: Any, tmp_path: Any) -> None:
    ckpt = str(tmp_path / "run")
    with pytest.raises(Killed):
        learner(tok, "lwf", Kill(step=2), checkpoint_every=1).fit(stream(), checkpoint_dir=ckpt)
    with pytest.raises(CheckpointError, match=r"different configuration \(differs in: train\)"):
        learner(tok, "lwf", Kill(), lr=2e-2).fit(stream(), checkpoint_dir=ckpt)
    with pytest.raises(CheckpointError, match="strategies"):
        learner(tok, "ewc+replay", Kill()).fit(stream(), checkpoint_dir=ckpt)

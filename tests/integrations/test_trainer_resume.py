"""A Trainer run killed mid-task (or between tasks) and resumed from its checkpoints ends
with the accuracy matrix, strategy state and weights of the uninterrupted run. petl's state
(EWC's Fisher and anchors, Replay's buffer, the matrix so far, the task's training items)
is saved inside the Trainer's own checkpoint folders, in safetensors and JSON."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

import petl
from petl.integrations.transformers import ContinualCallback
from tests.cl.cl_data import make_tokenizer
from tests.integrations.trainer_data import bert_trainer, domain_stream, train_args

CFG = petl.TrainConfig(batch_size=8, epochs=2, lr=1e-2, seed=0, progress=False)


class Killed(RuntimeError):
    pass


class KillAt(TrainerCallback):
    """Raises at a point of task 1: "mid" after its step 5 (checkpoint-4 is complete),
    "between" when its training begins (task 0 is done and saved)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def _task1(self, args: Any) -> bool:
        return os.path.basename(args.output_dir) == "task-1"

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.where == "mid" and self._task1(args) and state.global_step == 5:
            raise Killed

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.where == "between" and self._task1(args):
            raise Killed


def run(folder: str, kill: str | None = None, resume: bool = False) -> tuple[Any, Any, Any]:
    tok = make_tokenizer()
    args = train_args(folder, CFG, save_strategy="steps", save_steps=2)
    trainer = bert_trainer(args, tok)
    if kill:
        trainer.add_callback(KillAt(kill))
    strategies = [petl.EWC(lam=100.0), petl.Replay(memory=16)]
    stream = domain_stream(n_first=32, n_later=32, n_test=40)
    results = ContinualCallback(stream, strategies).fit(trainer, resume_from_checkpoint=resume)
    return results, strategies, trainer.model


@pytest.mark.slow  # about 20 s each: three runs of two tasks
@pytest.mark.parametrize("where", ["mid", "between"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Any, where: str) -> None:
    full, full_strategies, full_model = run(str(tmp_path / "full"))
    with pytest.raises(Killed):
        run(str(tmp_path / "killed"), kill=where)
    if where == "mid":
        assert os.path.isdir(tmp_path / "killed" / "task-1" / "checkpoint-4" / "petl")
    resumed, strategies, model = run(str(tmp_path / "killed"), resume=True)
    # The resumed run repeats the same computation on the same shapes from restored state,
    # so bit-identity is the property: the matrix, the strategies' state and the weights.
    np.testing.assert_array_equal(resumed.accuracy, full.accuracy)
    np.testing.assert_array_equal(resumed.initial, full.initial)
    assert strategies[1].buffer == full_strategies[1].buffer
    # resumed == uninterrupted: the same computations on the same shapes, bit for bit
    for key, value in full_strategies[0].state_dict().items():
        got = strategies[0].state_dict()[key]
        assert torch.equal(got, value) if isinstance(value, torch.Tensor) else got == value, key
    for (name, p), q in zip(full_model.named_parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_resume_with_other_strategies_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(Killed):
        run(str(tmp_path), kill="between")
    tok = make_tokenizer()
    trainer = bert_trainer(train_args(str(tmp_path), CFG), tok)
    cl = ContinualCallback(domain_stream(n_first=32, n_later=32, n_test=40), [petl.Replay()])
    with pytest.raises(petl.CheckpointError, match="strategies"):
        cl.fit(trainer, resume_from_checkpoint=True)

"""The same stream, model, seed and hyperparameters through `petl.Learner` and through a
transformers.Trainer + ContinualCallback give accuracy matrices within 0.05 (EWC and
Replay), on a tiny BERT with LoRA.

Both runs start from the same weights (`learner_like_bert`: the Learner's LoRA and head
draws), without dropout. They still differ in the data order (petl's own seeded shuffle
vs the Trainer's sampler), so the matrices agree only up to that noise: 100 test examples
per task make one example 0.01. EWC's strength is set high enough that it visibly holds
task 0 (task 1 is then barely learned), so the comparison tests the penalty itself, not two
runs that ignore it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import petl
from petl.integrations.transformers import ContinualCallback
from tests.cl.cl_data import make_bert, make_tokenizer
from tests.integrations.trainer_data import LORA, domain_stream, learner_like_bert, train_args

pytestmark = pytest.mark.slow  # about 30 s: two strategies x two runs
CFG = petl.TrainConfig(batch_size=16, epochs=5, lr=1e-2, seed=0, progress=False)
TOL = 0.05
CASES = {
    "ewc": lambda: [petl.EWC(lam=1e4)],
    "replay": lambda: [petl.Replay(memory=48)],
}


@pytest.mark.parametrize("name", list(CASES))
def test_learner_and_trainer_give_the_same_matrix(name: str, tmp_path: Any) -> None:
    from transformers import DataCollatorWithPadding, Trainer

    tok = make_tokenizer()
    stream = domain_stream(n_test=100)
    learner = petl.Learner(
        make_bert(seed=0, dropout=0.0),
        tok,
        method="lora",
        method_options=LORA,
        strategies=CASES[name](),
        config=CFG,
    )
    expected = learner.fit(stream)
    trainer = Trainer(
        model=learner_like_bert(seed=0),
        args=train_args(str(tmp_path), CFG),
        data_collator=DataCollatorWithPadding(tok),
        processing_class=tok,
    )
    got = ContinualCallback(stream, CASES[name]()).fit(trainer)
    np.testing.assert_array_equal(got.initial, expected.initial)  # same starting weights
    assert np.abs(got.accuracy - expected.accuracy).max() <= TOL, (
        got.accuracy.tolist(),
        expected.accuracy.tolist(),
    )
    assert got.accuracy[0, 0] >= 0.9  # task 0 is learned before it can be forgotten
    if name == "ewc":  # the penalty holds task 0 in both runs
        assert min(got.accuracy[1, 0], expected.accuracy[1, 0]) >= 0.9

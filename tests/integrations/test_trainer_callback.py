"""ContinualCallback on a plain transformers.Trainer: clear errors for what it cannot do,
the strategies' loss terms reach the Trainer's loss once per optimizer step (also under
gradient accumulation), the accuracy matrix is logged through `trainer.log`, and token
classification runs end to end."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import petl
from petl.integrations.transformers import ContinualCallback
from tests.cl.cl_data import make_tokenizer
from tests.integrations.trainer_data import bert_trainer, domain_stream, train_args

CFG = petl.TrainConfig(batch_size=8, epochs=1, lr=1e-2, seed=0, progress=False)


@pytest.fixture(scope="module")
def tok() -> Any:
    return make_tokenizer()


def small_stream() -> petl.Stream:
    return domain_stream(n_first=16, n_later=16, n_test=8)


def test_unsupported_strategy_is_a_clear_error() -> None:
    with pytest.raises(petl.ConfigError, match=r"task_adapters.*petl\.Learner"):
        ContinualCallback(small_stream(), [petl.TaskAdapters()])


def test_user_optimizer_is_a_clear_error(tok: Any, tmp_path: Any) -> None:
    trainer = bert_trainer(train_args(str(tmp_path), CFG), tok)
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.1)
    with pytest.raises(petl.ConfigError, match="fresh optimizer"):
        ContinualCallback(small_stream()).fit(trainer)


def test_too_few_output_labels_is_a_clear_error(tok: Any, tmp_path: Any) -> None:
    from tests.cl.cl_data import split_records

    stream = petl.Stream.from_records(split_records([[0, 1], [2, 3]], 8, 4), val_fraction=0)
    trainer = bert_trainer(train_args(str(tmp_path), CFG), tok)  # 2 labels; the stream has 4
    with pytest.raises(petl.ConfigError, match="num_labels=4"):
        ContinualCallback(stream).fit(trainer)


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_strategy_terms_are_added_once_per_optimizer_step(
    tok: Any, tmp_path: Any, grad_accum: int
) -> None:
    """EWC's term in the loss that `training_step` backpropagates, summed over the
    micro-batches of one optimizer step, is lam/2 * penalty: the same as in petl's loop."""
    cfg = petl.TrainConfig(batch_size=8, grad_accum=grad_accum, epochs=1, seed=0, progress=False)
    trainer = bert_trainer(train_args(str(tmp_path), cfg), tok)
    ewc = petl.EWC(lam=10.0)
    cl = ContinualCallback(small_stream(), [ewc])
    cl.fit(trainer)  # trains both tasks; EWC now holds 2 terms
    view = cl.learner
    assert view is not None
    params = view.trainable_parameters()
    with torch.no_grad():  # move away from the anchors so the penalty is not ~0
        for p in params.values():
            p.add_(0.01)
    penalty = float(ewc.penalty(params).detach())
    assert penalty > 0
    batch = trainer.data_collator([cl.task_dataset(tok, 0)[i] for i in range(4)])
    model = trainer.model.train()
    trainer.current_gradient_accumulation_steps = grad_accum
    for scaled in (False, True):  # the Trainer's flag: loss already normalised over the GA window
        trainer.loss_is_scaled_for_ga = scaled
        total = trainer.compute_loss(model, batch)
        plain = type(trainer).compute_loss(trainer, model, batch)  # the class's own: no terms
        expected = ewc.lam / 2 * penalty / (grad_accum if scaled else 1)
        # float32 sums of a few thousand squared differences: relative 1e-4
        np.testing.assert_allclose((total - plain).item(), expected, rtol=1e-4)
    model.eval()  # evaluation losses get no terms: the very same computation, so exact
    assert torch.equal(
        trainer.compute_loss(model, batch), type(trainer).compute_loss(trainer, model, batch)
    )


def test_matrix_and_summary_are_logged_and_returned(tok: Any, tmp_path: Any) -> None:
    trainer = bert_trainer(train_args(str(tmp_path), CFG), tok)
    results = ContinualCallback(small_stream(), [petl.Replay(memory=8)]).fit(trainer)
    assert results.accuracy.shape == (2, 2) and results.task_names == ["t0", "t1"]
    logged = [h for h in trainer.state.log_history if "petl/task" in h]
    assert [h["petl/task"] for h in logged] == [1.0]  # the state is per train(): last task
    np.testing.assert_allclose(
        [logged[-1]["petl/accuracy/t0"], logged[-1]["petl/accuracy/t1"]],
        results.accuracy[-1],
        atol=1e-6,
    )
    assert logged[-1]["petl/forgetting"] == pytest.approx(results.summary()["forgetting"])
    saved = petl.Results.load(str(tmp_path / "petl_results.json"))
    np.testing.assert_array_equal(saved.accuracy, results.accuracy)


def test_token_classification(tmp_path: Any) -> None:
    from transformers import DataCollatorForTokenClassification, Trainer

    from tests.families.family_data import bert_tagger, ner_stream, wordpiece_tokenizer

    tok = wordpiece_tokenizer()
    stream = ner_stream(n_train=16, n_test=8)
    width = sum(len(block) for block in stream.block_labels())  # every task's tags
    model = bert_tagger(seed=0)
    model.classifier = torch.nn.Linear(32, width)
    model.config.num_labels = model.num_labels = width
    trainer = Trainer(
        model=petl.apply(model, "lora", r=4),
        args=train_args(str(tmp_path), CFG),
        data_collator=DataCollatorForTokenClassification(tok),
        processing_class=tok,
    )
    results = ContinualCallback(stream, [petl.EWC(lam=10.0)]).fit(trainer)
    assert results.metric == ["f1"] * len(stream)
    assert results.accuracy.shape == (len(stream), len(stream))
    assert np.all((results.accuracy >= 0) & (results.accuracy <= 1))

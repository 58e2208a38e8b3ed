"""petl's own methods (bottleneck, BitFit) under a plain `transformers.Trainer`, as peft's
LoRA works: Trainer keeps only the dataset columns that the model's forward names, so
`PetlModel.forward` names its inputs."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

import petl
from tests.tiny_models import batch, make_model


class Rows(torch.utils.data.Dataset):
    """Dict rows, with an extra column Trainer must drop (it is not a forward input)."""

    def __init__(self, data: dict[str, torch.Tensor]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data["input_ids"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**{k: v[i] for k, v in self.data.items()}, "note": "not an input"}


@pytest.mark.parametrize("method", ["bottleneck", "bitfit"])
def test_native_methods_train_under_transformers_trainer(method: str, tmp_path) -> None:
    from transformers import Trainer, TrainingArguments

    model = petl.apply(make_model("bert_seq"), method)
    assert {"input_ids", "attention_mask", "labels"} <= set(
        inspect.signature(model.forward).parameters
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    data = batch("bert_seq", size=8, seed=3)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=1,
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
    )
    result = Trainer(model=model, args=args, train_dataset=Rows(data)).train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    changed = [  # did a parameter move at all: exact comparison is the question
        n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])
    ]
    assert any(method in n for n in changed)  # the method's own weights were trained


def test_positional_and_named_calls_match_the_base_model() -> None:
    base = make_model("bert_seq")
    model = petl.apply(make_model("bert_seq"), "bitfit")  # zero-initialised: no change yet
    data = batch("bert_seq")
    expected = base(**data).logits
    torch.testing.assert_close(model(**data).logits, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        model(data["input_ids"], data["attention_mask"]).logits, expected, rtol=0, atol=1e-6
    )

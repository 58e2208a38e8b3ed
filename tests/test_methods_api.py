"""`petl.apply` with config objects and options, `petl.summary`, `PetlModel` behaviour,
and the tiny tokenizer: what the method matrix does not cover."""

from __future__ import annotations

import json

import pytest
import torch

import petl
from tests.tiny_models import batch, make_model


def _logits(model: torch.nn.Module, name: str) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**batch(name)).logits


def test_peft_config_object_keeps_head_trainable() -> None:
    from peft import LoraConfig

    model = petl.apply(make_model("vit"), LoraConfig(target_modules=["q_proj", "v_proj"]))
    parts = petl.summary(model).by_part
    assert parts["lora"] > 0 and parts["head"] == 3 * 32 + 3


def test_native_config_object() -> None:
    model = petl.apply(make_model("bert_seq"), petl.BottleneckConfig(style="pfeiffer"))
    assert isinstance(model, petl.PetlModel)
    assert model.petl_config.modules_to_save == ["classifier"]
    assert model.config.model_type == "bert"  # attributes reach the wrapped model


def test_head_of_t5_classifier_is_saved(tmp_path) -> None:
    model = petl.apply(make_model("t5_seq"), "lora")
    model.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert "classification_head" in saved["modules_to_save"]


@pytest.mark.parametrize(
    ("method", "options", "expected"),
    [
        ("bitfit", {"target_modules": ["query"]}, {"bitfit": 2 * 32}),
        ("lora", {"target_modules": r".*\.query", "r": 2}, {"lora": 2 * 2 * (32 + 32)}),
        (
            "bottleneck",
            {"target_modules": ["output.dense"], "reduction_factor": 8},
            {"bottleneck": 4 * (32 * 4 + 4 + 4 * 32 + 32)},
        ),
    ],
)
def test_target_modules_restrict_the_adapter(method, options, expected) -> None:
    parts = petl.summary(petl.apply(make_model("bert_seq"), method, **options)).by_part
    assert parts == {**expected, "head": 3 * 32 + 3}


def test_method_aliases() -> None:
    model = petl.apply(make_model("llama_lm"), "prompt", num_virtual_tokens=2)
    assert petl.summary(model).method == "prompt_tuning"


def test_summary_of_plain_and_frozen_models() -> None:
    model = make_model("bert_seq")
    s = petl.summary(model)
    assert s.method == "full" and s.trainable == s.total > 0
    assert set(s.by_part) == {"backbone", "head"}
    model.requires_grad_(False)
    s = petl.summary(model)
    assert s.method == "frozen" and s.trainable == 0 and s.trainable_fraction == 0.0


def test_summary_as_dict_and_str() -> None:
    s = petl.summary(petl.apply(make_model("bert_seq"), "lora"))
    d = s.as_dict()
    assert d["method"] == "lora" and d["trainable"] == s.trainable
    assert d["by_part"] == s.by_part and 0 < d["trainable_percent"] < 100
    text = str(s)
    assert "method: lora" in text and f"{s.trainable:,}" in text and "head" in text


def test_bitfit_disabled_while_merged_gives_base_outputs() -> None:
    model = petl.apply(make_model("bert_seq"), "bitfit")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "bitfit_" in name:
                param.add_(0.1)
    model.merge_adapter()
    with model.disable_adapter():
        disabled = _logits(model, "bert_seq")
    torch.testing.assert_close(disabled, _logits(make_model("bert_seq"), "bert_seq"))


def test_tokenizer_batch_through_adapted_model(tokenizer) -> None:
    enc = tokenizer(
        ["the cat sat on the mat", "a very good movie"], padding=True, return_tensors="pt"
    )
    assert enc["input_ids"][0, 0].item() == tokenizer.cls_token_id
    assert int(enc["input_ids"].max()) < 100
    model = petl.apply(make_model("bert_seq"), "lora")
    out = model(**enc, labels=torch.tensor([0, 1]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)

"""Adapters under faults: a missing, truncated, overwritten or pickled weights file is a
clear error naming the path before peft sees it; applying a method to a model that already
carries an adapter, or saving a model with adapters of both kinds, is refused."""

from __future__ import annotations

import os
from typing import Any

import pytest

import petl
from petl import CheckpointError, ConfigError, IncompatibleModelError
from tests.faults.fault_kit import truncate
from tests.tiny_models import make_model

WEIGHTS = "adapter_model.safetensors"


@pytest.fixture(params=["lora", "bottleneck"])
def saved(request: Any, tmp_path: Any) -> str:
    """A saved adapter (a peft method and a petl one) of the tiny BERT classifier."""
    folder = str(tmp_path / request.param)
    petl.save(petl.apply(make_model("bert_seq"), request.param), folder)
    return folder


def test_missing_weights_name_the_path(saved: str) -> None:
    os.remove(os.path.join(saved, WEIGHTS))
    with pytest.raises(CheckpointError, match=rf"No {WEIGHTS} in '{saved}'.*missing"):
        petl.load(make_model("bert_seq"), saved)


def test_pickled_weights_only_are_refused(saved: str) -> None:
    os.replace(os.path.join(saved, WEIGHTS), os.path.join(saved, "adapter_model.bin"))
    with pytest.raises(CheckpointError, match=r"only adapter_model.bin \(pickle\)"):
        petl.load(make_model("bert_seq"), saved)


def test_truncated_weights_name_the_path(saved: str) -> None:
    truncate(os.path.join(saved, WEIGHTS))
    with pytest.raises(CheckpointError, match=rf"{saved}/{WEIGHTS} are damaged: .*truncated"):
        petl.load(make_model("bert_seq"), saved)


def test_overwritten_header_names_the_path(saved: str) -> None:
    path = os.path.join(saved, WEIGHTS)
    with open(path, "r+b") as f:
        f.seek(10)
        f.write(b"\xff\x00\xff\x00")
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS} are damaged: the header"):
        petl.load(make_model("bert_seq"), saved)


@pytest.mark.parametrize("first", ["lora", "bottleneck"])
@pytest.mark.parametrize("second", ["lora", "bottleneck"])
def test_apply_on_an_adapted_model_says_how_to_replace_or_stack(first: str, second: str) -> None:
    adapted = petl.apply(make_model("bert_seq"), first)
    with pytest.raises(
        IncompatibleModelError, match=r"already carries an adapter.*merge_and_unload"
    ):
        petl.apply(adapted, second)


def test_apply_inside_an_adapted_model_is_refused() -> None:
    # The model inside a PeftModel still holds LoRA layers: a bottleneck there would be
    # saved without them.
    lora = petl.apply(make_model("bert_seq"), "lora")
    with pytest.raises(IncompatibleModelError, match=r"peft adapter layers|peft LORA"):
        petl.apply(lora.base_model.model, "bottleneck")


def test_merged_adapter_can_be_stacked_and_saved_whole(tmp_path: Any) -> None:
    merged = petl.apply(make_model("bert_seq"), "lora").merge_and_unload()
    stacked = petl.apply(merged, "bottleneck")
    petl.save(stacked, str(tmp_path))
    assert os.path.exists(tmp_path / WEIGHTS)


def test_saving_adapters_of_both_kinds_is_refused(tmp_path: Any) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    model = petl.apply(make_model("bert_seq"), "bottleneck")
    inject_adapter_in_model(LoraConfig(target_modules=["query"]), model.base_model)
    with pytest.raises(ConfigError, match="both petl and peft adapters"):
        petl.save(model, str(tmp_path))
    with pytest.raises(ConfigError, match="both petl and peft adapters"):
        model.save_pretrained(str(tmp_path))
    assert not os.path.exists(tmp_path / WEIGHTS)


def test_changed_weight_bytes_are_caught_by_the_saved_hash(saved: str) -> None:
    path = os.path.join(saved, WEIGHTS)
    with open(path, "r+b") as f:  # the last bytes: tensor data, the header stays valid
        f.seek(-8, os.SEEK_END)
        f.write(b"\x00\x00\xc0\x7f\x00\x00\xc0\x7f")  # two float32 NaNs
    with pytest.raises(CheckpointError, match=r"sha256 differs from the one saved"):
        petl.load(make_model("bert_seq"), saved)

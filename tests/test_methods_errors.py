"""Bad input to `petl.apply` / `petl.load`: the exception type from petl.errors and the
phrases of its message that tell the user what to do."""

from __future__ import annotations

import os

import pytest

import petl
from petl.errors import ConfigError, IncompatibleModelError
from tests.tiny_models import make_model


def test_unknown_method_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        petl.apply(make_model("bert_seq"), "loraa")
    text = str(err.value)
    assert "Unknown method 'loraa'" in text and "Did you mean 'lora'?" in text
    for name in petl.METHODS:
        assert name in text


@pytest.mark.parametrize(
    ("method", "option", "valid"),
    [
        ("lora", "rank", "lora_alpha"),
        ("ia3", "r", "feedforward_modules"),
        ("prompt_tuning", "n_tokens", "num_virtual_tokens"),
        ("bottleneck", "size", "reduction_factor"),
        ("bitfit", "lr", "target_modules"),
    ],
)
def test_unknown_option_lists_valid_ones(method: str, option: str, valid: str) -> None:
    with pytest.raises(ConfigError, match="Valid options: ") as err:
        petl.apply(make_model("bert_seq"), method, **{option: 1})
    assert repr(option) in str(err.value) and valid in str(err.value)


@pytest.mark.parametrize(
    ("method", "model", "targets", "candidate"),
    [
        ("lora", "bert_seq", ["nope"], "query"),
        ("lora", "llama_lm", r"model\.nope", "q_proj"),
        ("adalora", "gpt2_lm", ["nope"], "c_attn"),
        ("ia3", "bert_seq", ["nope"], "value"),
        ("bottleneck", "bert_seq", ["nope"], "dense"),
        ("bitfit", "gpt2_seq", ["nope"], "c_proj"),
    ],
)
def test_targets_matching_nothing_list_candidates(method, model, targets, candidate) -> None:
    options = {"total_step": 10} if method == "adalora" else {}
    with pytest.raises(ConfigError, match="matched no module") as err:
        petl.apply(make_model(model), method, target_modules=targets, **options)
    assert "Candidate module names" in str(err.value) and candidate in str(err.value)


@pytest.mark.parametrize("model", ["bert_seq", "gpt2_seq", "t5_seq"])
def test_prefix_tuning_on_classifier_suggests_alternatives(model: str) -> None:
    with pytest.raises(IncompatibleModelError, match="prefix_tuning cannot run") as err:
        petl.apply(make_model(model), "prefix_tuning")
    assert "'prompt_tuning'" in str(err.value) and "'lora'" in str(err.value)


@pytest.mark.parametrize(
    ("method", "model", "phrase"),
    [
        ("prompt_tuning", "bert_tok", "labels"),
        ("p_tuning", "t5_seq", "input embeddings"),
        ("prompt_tuning", "vit", "task type"),
    ],
)
def test_prompt_methods_refuse_models_they_cannot_run_on(method, model, phrase) -> None:
    with pytest.raises(IncompatibleModelError, match=phrase):
        petl.apply(make_model(model), method)


@pytest.mark.parametrize("model", ["llama_lm", "t5_gen"])
def test_bitfit_on_bias_free_model(model: str) -> None:
    with pytest.raises(IncompatibleModelError, match="no bias parameters") as err:
        petl.apply(make_model(model), "bitfit")
    assert "'lora'" in str(err.value)


def test_adalora_needs_total_step() -> None:
    with pytest.raises(ConfigError, match="total_step"):
        petl.apply(make_model("bert_seq"), "adalora")


def test_bad_bottleneck_options() -> None:
    with pytest.raises(ConfigError, match="'houlsby' or 'pfeiffer'"):
        petl.apply(make_model("bert_seq"), "bottleneck", style="parallel")
    with pytest.raises(ConfigError, match="reduction_factor"):
        petl.apply(make_model("bert_seq"), "bottleneck", reduction_factor=0)


def test_method_must_be_name_or_config() -> None:
    from peft import LoraConfig

    with pytest.raises(ConfigError, match="must be a name"):
        petl.apply(make_model("bert_seq"), 3)
    with pytest.raises(ConfigError, match="inside the config"):
        petl.apply(make_model("bert_seq"), LoraConfig(task_type="SEQ_CLS"), r=4)


def test_load_from_directory_without_adapter(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"adapter_config\.json"):
        petl.load(make_model("bert_seq"), str(tmp_path))


SAVERS = {"petl.save": petl.save, "save_pretrained": lambda m, d: m.save_pretrained(d)}
OPTIONS = {
    "lora": {},
    "ia3": {},
    "adalora": {"total_step": 10},
    "prompt_tuning": {},
    "bottleneck": {},
    "bitfit": {},
}


def _saved(tmp_path, method: str, saver: str, model: str = "bert_seq") -> str:
    adapted = petl.apply(make_model(model), method, **OPTIONS[method])
    SAVERS[saver](adapted, str(tmp_path))
    if saver == "save_pretrained":  # the base model's signature is not there to check
        meta = os.path.join(tmp_path, "petl_meta.json")
        if os.path.exists(meta):
            os.remove(meta)
    return str(tmp_path)


@pytest.mark.parametrize("saver", SAVERS)
@pytest.mark.parametrize("method", OPTIONS)
def test_load_onto_other_size_raises(tmp_path, method: str, saver: str) -> None:
    directory = _saved(tmp_path, method, saver)
    with pytest.raises(IncompatibleModelError, match="another architecture or size"):
        petl.load(make_model("bert_seq", hidden=48), directory)


@pytest.mark.parametrize("method", ["prompt_tuning", "prefix_tuning", "p_tuning"])
def test_load_prompt_onto_other_size_raises(tmp_path, method: str) -> None:
    """No head to mismatch and no petl_meta.json: the prompt's own sizes are checked."""
    adapted = petl.apply(make_model("gpt2_lm"), method, num_virtual_tokens=4)
    adapted.save_pretrained(str(tmp_path))
    with pytest.raises(IncompatibleModelError, match="token_dim: saved 32, given 48"):
        petl.load(make_model("gpt2_lm", hidden=48), str(tmp_path))


@pytest.mark.parametrize("saver", SAVERS)
@pytest.mark.parametrize("method", ["lora", "ia3", "bottleneck", "bitfit"])
def test_load_onto_other_architecture_raises(tmp_path, method: str, saver: str) -> None:
    directory = _saved(tmp_path, method, saver)
    with pytest.raises(IncompatibleModelError):
        petl.load(make_model("gpt2_seq"), directory)

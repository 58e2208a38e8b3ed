"""The method registry against the installed peft and the rest of petl: every peft tuner is
registered or excluded with a reason, weight prefixes are peft's, every registered method
is in the method matrix, the README states how many there are, and the defaults that
depend on the model's size fit it."""

from __future__ import annotations

import dataclasses
import os
import re

import pytest

import petl
from petl.errors import ConfigError, IncompatibleModelError
from petl.methods import EXCLUDED, METHODS, ModelSize, get_method, training_options
from tests import test_methods
from tests.tiny_models import make_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEFT_SPECS = [s for s in METHODS.values() if s.backend == "peft"]


def test_every_peft_tuner_is_registered_or_excluded() -> None:
    from peft.utils import PeftType

    names = {t.value.lower() for t in PeftType}
    assert not names - set(METHODS) - set(EXCLUDED), "peft tuners petl neither offers nor excludes"
    assert not set(METHODS) & set(EXCLUDED)


def test_every_peft_config_class_is_registered_or_excluded() -> None:
    import peft

    used = {s.config.split(":")[1] for s in PEFT_SPECS}
    classes = {n for n in dir(peft) if n.endswith("Config") and isinstance(getattr(peft, n), type)}
    generic = {"PeftConfig", "PromptLearningConfig", "LoraRuntimeConfig"}
    # excluded names are lower-case config names without "Config" (MultitaskPromptTuning,
    # XLora, LoftQ, LoraGA -> lora_ga, ...)
    left = [c for c in classes - used - generic if _snake(c[: -len("Config")]) not in EXCLUDED]
    assert not left, f"peft config classes neither registered nor excluded: {left}"


def _snake(name: str) -> str:
    special = {"LoraGA": "lora_ga", "MultitaskPromptTuning": "multitask_prompt_tuning"}
    return special.get(name, name.lower())


@pytest.mark.parametrize("spec", PEFT_SPECS, ids=lambda s: s.name)
def test_peft_spec_matches_peft(spec) -> None:
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING
    from peft.utils import PeftType

    peft_type = PeftType[spec.name.upper()]
    assert spec.config_class() is PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]
    prefix = PEFT_TYPE_TO_PREFIX_MAPPING[peft_type]
    if spec.targets in ("prompt", "prefix"):  # weights live in the prompt encoder
        assert spec.prefix == "prompt_encoder" or prefix.startswith(spec.prefix)
    else:
        assert spec.prefix == prefix
    fields = {f.name for f in dataclasses.fields(spec.config_class())}
    assert set(spec.defaults) | set(spec.sized) | set(spec.required) <= fields


def test_native_layers_use_the_registry_prefix() -> None:
    from petl.methods.bitfit import BitFitLayer
    from petl.methods.bottleneck import BottleneckLayer

    assert BitFitLayer.adapter_prefix == METHODS["bitfit"].prefix
    assert BottleneckLayer.adapter_prefix == METHODS["bottleneck"].prefix


def test_readme_states_the_method_count() -> None:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        found = re.findall(r"(\d+) PEFT methods available by name", f.read())
    assert found == [str(len(METHODS))]


def test_docs_page_lists_every_method_and_exclusion() -> None:
    with open(os.path.join(ROOT, "docs", "methods", "all-methods.md"), encoding="utf-8") as f:
        page = f.read()
    assert {m for m in METHODS if f"| `{m}` |" not in page} == set()
    assert {m for m in EXCLUDED if f"- `{m}`: {EXCLUDED[m]}" not in page} == set()
    assert f"{len(METHODS)} methods are available" in page.replace("\n", " ")


def test_every_registered_method_is_in_the_matrix() -> None:
    in_matrix = {test_methods._case(c).method for c in test_methods.CASES}
    assert in_matrix == set(METHODS)


@pytest.mark.parametrize("name", sorted(EXCLUDED))
def test_excluded_tuner_says_why(name: str) -> None:
    with pytest.raises(ConfigError, match="does not offer by name") as err:
        get_method(name)
    assert EXCLUDED[name] in str(err.value) and "lora" in str(err.value)


def test_sized_defaults_fit_the_model() -> None:
    spec = METHODS["c3a"]
    assert spec.sized["block_size"](ModelSize(hidden=384, layers=6)) == 128
    model = petl.apply(make_model("bert_seq", hidden=48), "c3a")
    assert model.peft_config["default"].block_size == 16  # gcd(256, 48): divides every layer
    given = petl.apply(make_model("bert_seq"), "c3a", block_size=8)
    assert given.peft_config["default"].block_size == 8  # the user's option wins


def test_required_option_is_named() -> None:
    with pytest.raises(ConfigError, match="token_indices"):
        petl.apply(make_model("llama_lm"), "trainable_tokens")


def test_tuner_without_head_saving_refuses_classifiers() -> None:
    with pytest.raises(IncompatibleModelError, match="cannot train or save a task head"):
        petl.apply(make_model("bert_seq"), "trainable_tokens", token_indices=[3, 4])


def test_tuner_that_adapts_nothing_is_refused() -> None:
    # peft's OSF skips GPT-2's Conv1D layers without a word
    with pytest.raises(IncompatibleModelError, match="adapted no layer") as err:
        petl.apply(make_model("gpt2_lm"), "osf")
    assert "c_attn" in str(err.value)


def test_peft_failure_is_a_petl_error() -> None:
    with pytest.raises(IncompatibleModelError, match="peft's shadow cannot be applied"):
        petl.apply(make_model("bert_seq"), "shadow")  # decoders only


def test_training_options_come_from_the_hooks() -> None:
    assert training_options("adalora", 7) == {"total_step": 7}
    assert training_options("lora", 7) == {}


def test_layer_norm_tuning_defaults_to_every_norm() -> None:
    model = petl.apply(make_model("bert_seq"), "ln_tuning")
    assert set(model.peft_config["default"].target_modules) == {"LayerNorm"}
    with pytest.raises(ConfigError, match="Candidate module names"):
        petl.apply(make_model("bert_seq"), "ln_tuning", target_modules=["nope"])


def test_export_refuses_a_method_peft_cannot_merge() -> None:
    from types import SimpleNamespace

    from petl.exporting import _merged_backbone

    backbone = petl.apply(make_model("bert_seq"), "lily")
    learner = SimpleNamespace(model=SimpleNamespace(backbone=backbone), method="lily")
    with pytest.raises(ConfigError, match="'lily' cannot be merged"):
        _merged_backbone(learner, None)

"""Methods petl takes from peft as they are: option checking, defaults and clear errors
around `peft.get_peft_model`, nothing re-implemented."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from petl.errors import ConfigError, IncompatibleModelError
from petl.methods.targets import EXTRA_LORA_TARGETS, find_targets, model_type

PROMPT_METHODS = ("prompt_tuning", "prefix_tuning", "p_tuning")

# Defaults chosen so that `petl.apply(model, name)` trains something sensible out of the box.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "lora": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0},
    "adalora": {"init_r": 12, "target_r": 8, "lora_alpha": 16},
    "ia3": {},
    "prompt_tuning": {"num_virtual_tokens": 20},
    "prefix_tuning": {"num_virtual_tokens": 20},
    "p_tuning": {"num_virtual_tokens": 20, "encoder_hidden_size": 128},
}


def config_class(method: str) -> type:
    import peft

    return {
        "lora": peft.LoraConfig,
        "adalora": peft.AdaLoraConfig,
        "ia3": peft.IA3Config,
        "prompt_tuning": peft.PromptTuningConfig,
        "prefix_tuning": peft.PrefixTuningConfig,
        "p_tuning": peft.PromptEncoderConfig,
    }[method]


def valid_options(method: str) -> list[str]:
    hidden = {"peft_type", "auto_mapping", "base_model_name_or_path", "revision", "runtime_config"}
    fields = dataclasses.fields(config_class(method))
    return sorted(f.name for f in fields if f.init and f.name not in hidden)


def build_config(method: str, model: nn.Module, task_type: str | None, options: dict[str, Any]):
    """Checks `options` against the peft config's fields and builds the config."""
    valid = valid_options(method)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"Option(s) {', '.join(map(repr, unknown))} are not taken by method {method!r}. "
            f"Valid options: {', '.join(valid)}."
        )
    kwargs = {**DEFAULT_OPTIONS[method], **options}
    if task_type is not None and "task_type" in valid:
        kwargs.setdefault("task_type", task_type)
    if method in ("lora", "adalora", "ia3"):
        targets = kwargs.get("target_modules")
        if targets is None and model_type(model) in EXTRA_LORA_TARGETS:
            kwargs["target_modules"] = EXTRA_LORA_TARGETS[model_type(model)]
            if method == "ia3":
                kwargs.setdefault("feedforward_modules", [])
        elif targets is not None and targets != "all-linear":
            find_targets(model, targets)
    if method == "adalora" and not kwargs.get("total_step"):
        raise ConfigError(
            "adalora needs total_step (the number of optimizer steps you will train): "
            "petl.apply(model, 'adalora', total_step=N). petl.Learner sets it for you."
        )
    if method in PROMPT_METHODS:
        check_prompt_method(method, model, kwargs.get("task_type"))
    try:
        return config_class(method)(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Invalid options for {method!r}: {err}") from None


def check_prompt_method(method: str, model: nn.Module, task_type: str | None) -> None:
    if task_type is None:
        raise IncompatibleModelError(
            f"{method} needs a task type (SEQ_CLS, TOKEN_CLS, CAUSAL_LM, SEQ_2_SEQ_LM) and "
            f"{type(model).__name__} has none petl recognises. Pass task_type=... or use 'lora'."
        )
    config = getattr(model, "config", None)
    if getattr(config, "model_type", "") == "vit":
        raise IncompatibleModelError(f"{method} works on text models only; use 'lora' for ViT.")
    name = type(model).__name__
    if method == "prefix_tuning" and task_type in ("SEQ_CLS", "TOKEN_CLS"):
        raise IncompatibleModelError(
            f"prefix_tuning cannot run on {name}: under transformers 5 classifiers do not "
            "accept the past key values prefix tuning injects. Use 'prompt_tuning' or 'lora' "
            "instead (prefix tuning works on causal LMs)."
        )
    if task_type == "TOKEN_CLS":
        raise IncompatibleModelError(
            f"{method} cannot run on {name}: peft prepends the virtual tokens to the logits "
            "but not to the labels, so token labels no longer line up. Use 'lora' instead."
        )
    if task_type == "SEQ_CLS" and getattr(config, "is_encoder_decoder", False):
        raise IncompatibleModelError(
            f"{method} cannot run on {name}: encoder-decoder classifiers take no input "
            "embeddings, where the virtual tokens go. Use 'lora' instead."
        )


def get_peft_model(model: nn.Module, config, adapter_name: str = "default"):
    import peft

    from petl.quiet import quiet_petl_calls

    try:
        with quiet_petl_calls():
            return peft.get_peft_model(model, config, adapter_name=adapter_name)
    except ValueError as err:
        text = str(err)
        lowered = text.lower()
        if "specify `target_modules`" in lowered:
            from petl.methods.targets import candidate_names

            raise ConfigError(
                f"peft has no default target modules for {type(model).__name__}; pass "
                f"target_modules=[...] (candidates: {', '.join(candidate_names(model))})."
            ) from None
        if "target modules" in lowered or "no modules were targeted" in lowered:
            from petl.methods.targets import no_match_error

            raise no_match_error(model, getattr(config, "target_modules", None)) from None
        if "past key values" in text:
            raise IncompatibleModelError(
                f"{type(model).__name__} does not support prefix tuning here ({text}). "
                "Use 'prompt_tuning' or 'lora'."
            ) from None
        raise

"""Methods petl takes from peft as they are: option checking, defaults and clear errors
around `peft.get_peft_model`, nothing re-implemented."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from petl.errors import ConfigError, IncompatibleModelError
from petl.methods import ModelSize, get_method, spec_of_peft_type
from petl.methods.targets import EXTRA_LORA_TARGETS, find_targets, model_type, norm_names


def config_class(method: str) -> type:
    """The peft config class of a registered peft method."""
    return get_method(method).config_class()


def valid_options(method: str) -> list[str]:
    hidden = {
        "peft_type",
        "auto_mapping",
        "base_model_name_or_path",
        "revision",
        "runtime_config",
        "peft_version",
    }
    fields = dataclasses.fields(config_class(method))
    return sorted(f.name for f in fields if f.init and f.name not in hidden)


def model_size(model: nn.Module) -> ModelSize:
    """Hidden size and depth from a transformers config (0 where it says nothing)."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config

    def first(*keys: str) -> int:
        return next((int(v) for k in keys if (v := getattr(config, k, None)) is not None), 0)

    return ModelSize(
        first("hidden_size", "n_embd", "d_model"),
        first("num_hidden_layers", "n_layer", "num_layers"),
    )


def build_config(method: str, model: nn.Module, task_type: str | None, options: dict[str, Any]):
    """Checks `options` against the peft config's fields and builds the config: petl's
    defaults, then those sized to the model, then the user's options."""
    spec = get_method(method)
    valid = valid_options(method)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"Option(s) {', '.join(map(repr, unknown))} are not taken by method {method!r}. "
            f"Valid options: {', '.join(valid)}."
        )
    size = model_size(model)
    sized = {k: f(size) for k, f in spec.sized.items() if k not in options and all(size)}
    kwargs = {**spec.defaults, **sized, **options}
    if task_type is not None and "task_type" in valid:
        kwargs.setdefault("task_type", task_type)
    if spec.targets == "weights" and "target_modules" in valid:
        targets = kwargs.get("target_modules")
        if targets is None and model_type(model) in EXTRA_LORA_TARGETS:
            kwargs["target_modules"] = EXTRA_LORA_TARGETS[model_type(model)]
            if "feedforward_modules" in valid:  # IA3: none of petl's defaults is one
                kwargs.setdefault("feedforward_modules", [])
        elif targets is not None and targets != "all-linear":
            find_targets(model, targets)
    if spec.targets == "norms":
        if kwargs.get("target_modules") is None:
            kwargs["target_modules"] = norm_names(model)
        elif kwargs["target_modules"] != "all-linear":
            find_targets(model, kwargs["target_modules"])
    missing = [k for k in spec.required if not kwargs.get(k)]
    if missing:
        raise ConfigError(
            f"{method} needs "
            + "; ".join(f"{k} ({spec.required[k]})" for k in missing)
            + f": petl.apply(model, {method!r}, {missing[0]}=...)."
        )
    if spec.targets in ("prompt", "prefix"):
        check_prompt_method(method, model, kwargs.get("task_type"))
    try:
        return spec.config_class()(**kwargs)
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
    if get_method(method).targets == "prefix" and task_type in ("SEQ_CLS", "TOKEN_CLS"):
        raise IncompatibleModelError(
            f"{method} cannot run on {name}: under transformers 5 classifiers do not "
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
    """`peft.get_peft_model` with petl's errors: targets that match nothing list the
    candidates, a tuner that cannot work on the model says so (and names peft's reason),
    and a tuner that silently adapted nothing is refused."""
    import peft

    from petl.quiet import quiet_petl_calls

    method = str(getattr(config.peft_type, "value", config.peft_type)).lower()
    try:
        with quiet_petl_calls():
            adapted = peft.get_peft_model(model, config, adapter_name=adapter_name)
    except ValueError as err:
        raise _peft_error(model, config, method, err) from None
    except (TypeError, AttributeError, NotImplementedError) as err:
        raise _refused(model, method, err) from None
    _check_adapted(adapted, method)
    return adapted


def _peft_error(model: nn.Module, config: Any, method: str, err: ValueError) -> Exception:
    text = str(err)
    lowered = text.lower()
    if "specify `target_modules`" in lowered:
        from petl.methods.targets import candidate_names

        return ConfigError(
            f"peft has no default target modules of {method} for {type(model).__name__}; pass "
            f"target_modules=[...] (candidates: {', '.join(candidate_names(model))})."
        )
    if "target modules" in lowered or "no modules were targeted" in lowered:
        from petl.methods.targets import no_match_error

        return no_match_error(model, getattr(config, "target_modules", None))
    if "past key values" in text:
        return IncompatibleModelError(
            f"{type(model).__name__} does not support prefix tuning here ({text}). "
            "Use 'prompt_tuning' or 'lora'."
        )
    return _refused(model, method, err)


def _refused(model: nn.Module, method: str, err: Exception) -> IncompatibleModelError:
    return IncompatibleModelError(
        f"peft's {method} cannot be applied to this {type(model).__name__} "
        f"({type(err).__name__}: {str(err)[:400]}). Check the method's options "
        "(petl.methods.METHODS[name].summary says what it needs) or use 'lora'."
    )


def _check_adapted(model: nn.Module, method: str) -> None:
    """Some tuners skip layer types they do not support without a word (OSF on GPT-2's
    Conv1D): then nothing would train but the head."""
    spec = spec_of_peft_type(method)
    if spec is None or spec.targets != "weights":
        return
    if not any(spec.prefix in name for name, _ in model.named_parameters()):
        from petl.methods.targets import candidate_names

        base = model.get_base_model()  # type: ignore[operator]
        raise IncompatibleModelError(
            f"peft's {method} adapted no layer of this {type(base).__name__}: its target "
            "layers are of a type the tuner does not support, or match nothing. Pass "
            f"target_modules naming nn.Linear layers (candidates: "
            f"{', '.join(candidate_names(base))}) on a fresh model, or use 'lora'."
        )

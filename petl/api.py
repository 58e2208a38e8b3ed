"""The three entry points of PEFT in petl: `apply`, `load` and `summary`."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from torch import nn

from petl.errors import CheckpointError, ConfigError, IncompatibleModelError
from petl.heads import HEAD_MODULES
from petl.integrity import safetensors_problem, sha256_file
from petl.methods import get_method, peft_methods, spec_of_peft_type
from petl.methods.native import CONFIG_NAME, WEIGHTS_NAME, NativeConfig, PetlModel
from petl.methods.present import refuse_adapted, refuse_mixed
from petl.methods.signature import META_NAME, check_meta, save_meta

_TASK_SUFFIXES = {
    "ForSequenceClassification": "SEQ_CLS",
    "ForTokenClassification": "TOKEN_CLS",
    "ForCausalLM": "CAUSAL_LM",
    "LMHeadModel": "CAUSAL_LM",
    "ForConditionalGeneration": "SEQ_2_SEQ_LM",
    "ForQuestionAnswering": "QUESTION_ANS",
}


def infer_task_type(model: nn.Module) -> str | None:
    """peft's task type from the model class name (e.g. BertForSequenceClassification)."""
    cls = type(model).__name__
    return next((t for s, t in _TASK_SUFFIXES.items() if cls.endswith(s)), None)


def head_modules(model: nn.Module) -> list[str]:
    """Names of the task head(s) that must stay trainable and be saved with the adapter."""
    return [n for n in HEAD_MODULES if isinstance(getattr(model, n, None), nn.Module)]


def apply(
    model: nn.Module,
    method: Any = "lora",
    *,
    task_type: str | None = "auto",
    adapter_name: str = "default",
    **options: Any,
) -> nn.Module:
    """Adds a PEFT method to a transformers model and freezes everything else.

    Args:
        model: A transformers model (any task head) or plain torch module.
        method: A method name (see `petl.methods.METHODS`), a peft `PeftConfig`, or a petl
            config (`BottleneckConfig`, `BitFitConfig`).
        task_type: peft's task type; "auto" infers it from the model class.
        adapter_name: Name of the adapter (peft methods).
        **options: The method's options, e.g. `r=8, target_modules=["query", "value"]`.

    Returns:
        A `peft.PeftModel` for peft's methods, a `petl.PetlModel` for petl's own; the task
        head (classifier/score) stays trainable and is saved with the adapter.

    Raises:
        ConfigError: unknown method or option, or target modules that match nothing.
        IncompatibleModelError: the method cannot work on this model, or the model already
            carries an adapter (the message says how to replace or stack).
    """
    refuse_adapted(model)
    if task_type == "auto":
        task_type = infer_task_type(model)
    if isinstance(method, NativeConfig):
        return _apply_native(model, method, task_type)
    if not isinstance(method, str):
        from peft import PeftConfig

        if not isinstance(method, PeftConfig):
            raise ConfigError(
                f"method must be a name, a peft config or a petl config, got {type(method).__name__}."
            )
        if options:
            raise ConfigError("Pass options inside the config object, not as keyword arguments.")
        _save_heads(model, method)
        return peft_methods.get_peft_model(model, method, adapter_name)
    spec = get_method(method)
    if spec.native_config is not None:
        config = _native_config(spec.native_config, spec.name, options, task_type)
        return _apply_native(model, config, task_type)
    config = peft_methods.build_config(spec.name, model, task_type, options)
    _save_heads(model, config)
    return peft_methods.get_peft_model(model, config, adapter_name)


def _save_heads(model: nn.Module, config: Any) -> None:
    """Adds the task heads to a peft config's modules_to_save, where peft will not: it
    saves only heads named classifier/score, and only for SEQ_CLS/TOKEN_CLS."""
    task_type = getattr(config, "task_type", None)
    own = ("classifier", "score") if task_type in ("SEQ_CLS", "TOKEN_CLS") else ()
    saved = list(getattr(config, "modules_to_save", None) or [])
    if head_modules(model) and not hasattr(config, "modules_to_save"):
        method = str(getattr(config.peft_type, "value", config.peft_type)).lower()
        raise IncompatibleModelError(
            f"peft's {method} cannot train or save a task head ({', '.join(head_modules(model))} "
            f"of this {type(model).__name__}), so the classifier would stay random: use it on "
            "a causal LM, or choose another method (e.g. 'lora')."
        )
    heads = [h for h in head_modules(model) if h not in own and h not in saved]
    if heads:
        config.modules_to_save = saved + heads


def _native_config(cls: type[NativeConfig], name: str, options: dict, task_type: str | None):
    valid = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"Option(s) {', '.join(map(repr, unknown))} are not taken by method {name!r}. "
            f"Valid options: {', '.join(valid)}."
        )
    return cls(**{"task_type": task_type, **options})


def _apply_native(model: nn.Module, config: NativeConfig, task_type: str | None) -> PetlModel:
    if config.modules_to_save is None:
        config.modules_to_save = head_modules(model)
    config.task_type = config.task_type or task_type
    for param in model.parameters():
        param.requires_grad = False
    spec = get_method(config.method)
    spec.inject(model, config)
    for name, param in model.named_parameters():
        parts = name.split(".")
        if any(p.startswith(spec.prefix) for p in parts) or any(
            p in config.modules_to_save for p in parts
        ):
            param.requires_grad = True
    return PetlModel(model, config)


def save(model: nn.Module, directory: str) -> None:
    """`model.save_pretrained(directory)` plus petl_meta.json (used by `load`'s checks).

    Raises:
        ConfigError: the model carries adapters of both petl and peft (one would be lost).
    """
    refuse_mixed(model)
    model.save_pretrained(directory)  # type: ignore[operator]
    save_meta(model, directory)


def load(
    base_model: nn.Module,
    directory: str,
    *,
    is_trainable: bool = False,
    adapter_name: str = "default",
) -> nn.Module:
    """Loads an adapter saved by `save_pretrained` (petl's or peft's) onto a fresh base model.

    Raises:
        ConfigError: the directory holds no adapter, or its config is not valid JSON.
        CheckpointError: the weights file is missing, truncated or overwritten (named).
        IncompatibleModelError: the adapter was trained on another architecture or size,
            or `base_model` already carries an adapter.
    """
    config_path = os.path.join(directory, CONFIG_NAME)
    if not os.path.exists(config_path):
        raise ConfigError(
            f"No {CONFIG_NAME} in {directory!r}: is it a directory saved by petl or peft?"
        )
    refuse_adapted(base_model)
    _check_weights(directory)
    check_meta(base_model, directory)
    try:
        with open(config_path, encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"{config_path} is not valid JSON ({err}); re-save the adapter."
        ) from None
    if "petl_method" in data:
        spec = get_method(data["petl_method"])
        assert spec.native_config is not None
        native = _apply_native(
            base_model, spec.native_config.from_dict(data), data.get("task_type")
        )
        native.load_adapter_weights(directory)
        if not is_trainable:
            native.requires_grad_(False)
        return native
    from peft import PeftModel

    # peft refuses to load prompt-learning adapters as trainable: load them frozen, then
    # unfreeze the saved prompt embeddings (all peft saves; p_tuning's MLP is not kept).
    peft_spec = spec_of_peft_type(str(data.get("peft_type", "")))
    prompt = peft_spec is not None and peft_spec.prefix == "prompt_encoder"  # prompt learning
    if prompt:
        _check_prompt_sizes(base_model, data, directory)
    try:
        model = PeftModel.from_pretrained(
            base_model,
            directory,
            adapter_name=adapter_name,
            is_trainable=is_trainable and not prompt,
        )
    except (RuntimeError, ValueError) as err:
        if "size mismatch" in str(err) or "target modules" in str(err).lower():
            raise IncompatibleModelError(
                f"The adapter in {directory} was trained on another architecture or size and "
                "does not fit this base model; load it onto the base model it was saved from. "
                f"peft says: {str(err)[:500]}"
            ) from None
        raise
    if is_trainable and prompt:
        for name, param in model.named_parameters():
            # (cartridge keeps its first tokens fixed: peft names them frozen_embedding)
            prompt_weight = peft_spec.prefix in name and "frozen_" not in name  # type: ignore[union-attr]
            param.requires_grad = prompt_weight or "modules_to_save" in name
    if not is_trainable:
        model.requires_grad_(False)  # peft leaves prompt-learning weights trainable
    after_load = getattr(peft_spec.hook_module() if peft_spec else None, "after_load", None)
    if after_load is not None:  # e.g. AdaLoRA's adapter name, see petl/methods/adalora.py
        after_load(model, adapter_name, is_trainable)
    return model


def _check_weights(directory: str) -> None:
    """The weights file must exist and be whole before peft sees it: peft would otherwise
    look for a missing file on the Hub, and a truncated one fails without its path."""
    path = os.path.join(directory, WEIGHTS_NAME)
    if not os.path.exists(path):
        pickled = os.path.exists(os.path.join(directory, "adapter_model.bin"))
        raise CheckpointError(
            f"No {WEIGHTS_NAME} in {directory!r}"
            + (
                ": only adapter_model.bin (pickle), which petl does not load because unpickling "
                "can run code. Re-save it with safe_serialization=True."
                if pickled
                else "; the adapter weights are missing. Re-save the adapter."
            )
        )
    problem = safetensors_problem(path)
    meta_path = os.path.join(directory, META_NAME)
    if problem is None and os.path.exists(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                expected = json.load(f).get("weights_sha256")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            expected = None  # an unreadable meta file is reported by check_meta
        if expected is not None and sha256_file(path) != expected:
            problem = f"its sha256 differs from the one saved in {META_NAME} (bytes changed)"
    if problem is not None:
        raise CheckpointError(f"The adapter weights {path} are damaged: {problem}. Re-save them.")


def _check_prompt_sizes(base_model: nn.Module, data: dict, directory: str) -> None:
    """peft loads soft prompts of another width or depth silently; the forward fails later."""
    try:
        width = base_model.get_input_embeddings().embedding_dim  # type: ignore[operator]
    except (AttributeError, NotImplementedError):
        return
    depth = getattr(getattr(base_model, "config", None), "num_hidden_layers", None)
    given = {"token_dim": width, "num_layers": depth}
    diffs = [
        f"{k}: saved {data[k]!r}, given {v!r}"
        for k, v in given.items()
        if v is not None and data.get(k) not in (None, v)
    ]
    if diffs:
        raise IncompatibleModelError(
            f"The prompt adapter in {directory} was trained on another architecture or size "
            f"({'; '.join(diffs)}). Load it onto the base model it was saved from."
        )

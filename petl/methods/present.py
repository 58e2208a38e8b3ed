"""Which adapters a model already carries, so `apply` never nests one method inside
another (peft then cannot load what it saved) and `save` never drops an adapter."""

from __future__ import annotations

from torch import nn

from petl.methods.layers import adapter_layers


def _petl_method(model: nn.Module) -> str | None:
    """The method of a `PetlModel` (known by its config, so this module needs not import
    native.py, which imports this one), None for anything else."""
    config = getattr(model, "petl_config", None)
    return None if config is None else str(config.method)


def adapters_on(model: nn.Module) -> list[str]:
    """Descriptions of the adapters on `model` (peft wrappers or layers, petl wrappers or
    layers); empty for a plain model."""
    found = []
    if _petl_method(model) is not None:
        found.append(f"petl {_petl_method(model)}")
    elif any(True for _ in adapter_layers(model)):
        found.append("petl adapter layers")
    peft_types = _peft_types(model)
    if peft_types:
        found.append(f"peft {'/'.join(sorted(peft_types))}")
    return found


def _peft_types(model: nn.Module) -> set[str]:
    try:
        from peft import PeftModel
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:  # peft is a dependency, but a model without it has no peft adapter
        return set()
    types = set()
    if isinstance(model, PeftModel):
        types |= {
            str(getattr(c.peft_type, "value", c.peft_type)) for c in model.peft_config.values()
        }
    if not types and any(isinstance(m, BaseTunerLayer) for m in model.modules()):
        types.add("adapter layers")  # peft layers injected without a PeftModel around them
    return types


def refuse_adapted(model: nn.Module) -> None:
    """Raises IncompatibleModelError when `model` already carries an adapter, saying how
    to replace or stack instead."""
    from petl.errors import IncompatibleModelError

    found = adapters_on(model)
    if found:
        raise IncompatibleModelError(
            f"This model already carries an adapter ({', '.join(found)}); petl.apply adds a "
            "method to a plain model. To replace it, apply to a fresh base model (or "
            "model.unload() / model.get_base_model() first). To stack, fold the first adapter "
            "into the weights with model = model.merge_and_unload(), then apply; for a second "
            "peft adapter of the same model use model.add_adapter(name, config)."
        )


def refuse_mixed(model: nn.Module) -> None:
    """Raises ConfigError when saving `model` would keep one method's weights and drop
    another's (e.g. petl layers inside a peft model, or peft layers inside a PetlModel)."""
    from petl.errors import ConfigError

    petl_kind = _petl_method(model) is not None or any(True for _ in adapter_layers(model))
    if petl_kind and _peft_types(model):
        raise ConfigError(
            f"This model carries both petl and peft adapters ({', '.join(adapters_on(model))}); "
            "one save would keep only one of them. Merge one first (merge_and_unload) or "
            "save them separately."
        )

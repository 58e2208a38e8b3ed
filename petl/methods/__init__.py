"""The method registry: every PEFT method petl can apply, by name, and the peft tuners it
leaves out (with why).

Every part of petl reads a method from here: `petl.apply` (config class, defaults, target
policy), `petl.load` and `petl.summary` (weight prefix), the training loop (hooks), export
(mergeable). Adding a method means one `register(...)` line below; a native method also
needs one file with a config dataclass and an `inject(model, config)` function, a method
with training-time needs (AdaLoRA) one module of hooks (see petl/methods/adalora.py).

This module imports neither torch nor peft: config classes and hooks are named by import
path and loaded on first use, so `petl --help` can list the methods cheaply."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from petl.errors import ConfigError, did_you_mean, unknown_choice

if TYPE_CHECKING:
    from petl.methods.native import NativeConfig


class ModelSize(NamedTuple):
    """The sizes a method's defaults may depend on (read from the model's config)."""

    hidden: int
    layers: int


@dataclass(frozen=True)
class MethodSpec:
    """What petl knows of a method.

    Attributes:
        name: Registry name (for peft tuners, peft's `PeftType` in lower case).
        summary: One line saying what it trains.
        config: Import path of its config class, "module:Class" (loaded lazily).
        prefix: Start of the names of its weights (peft's tuner prefix), by which
            `summary`, `load` and the tests find what it trains.
        mergeable: It can fold into the base weights (`merge_and_unload`, `petl.export`).
        unmerges: A merge can be undone (`unmerge_adapter`); OSF's cannot.
        targets: Target policy: "weights" (target_modules name layers; petl's defaults
            where peft has none; names that match nothing list candidates), "prompt"
            (virtual tokens, no targets), "prefix" (virtual keys/values: decoders only),
            "norms" (normalisation layers, all of them by default), "native" (petl's own
            methods pick their layers).
        defaults: Options petl sets unless the user does.
        sized: Options whose default depends on the model: option -> f(ModelSize).
        required: Options without a sensible default: option -> what it is.
        hooks: Import path of a module with the method's training-time needs (see
            `training_options`, `training_hooks`, `after_load`), or None.
    """

    name: str
    summary: str
    config: str
    prefix: str
    mergeable: bool = True
    unmerges: bool = True
    targets: str = "weights"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    sized: Mapping[str, Callable[[ModelSize], Any]] = field(default_factory=dict)
    required: Mapping[str, str] = field(default_factory=dict)
    hooks: str | None = None

    @property
    def backend(self) -> str:
        """ "peft" for peft's tuners, "petl" for petl's own methods."""
        return "peft" if self.config.startswith("peft:") else "petl"

    def config_class(self) -> type:
        return _load(self.config)

    @property
    def native_config(self) -> type[NativeConfig] | None:
        """The config dataclass of a petl method, None for a peft one."""
        return self.config_class() if self.backend == "petl" else None

    @property
    def inject(self) -> Callable[..., list[str]]:
        """A petl method's `inject(model, config)`, from the module of its config."""
        return _load(self.config.split(":")[0] + ":inject")

    def hook_module(self) -> Any:
        return importlib.import_module(self.hooks) if self.hooks else None


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


METHODS: dict[str, MethodSpec] = {}

# peft tuners (and config classes) that petl does not offer by name, and why.
EXCLUDED: dict[str, str] = {}

ALIASES = {"prompt": "prompt_tuning", "prefix": "prefix_tuning", "ptuning": "p_tuning"}


def register(spec: MethodSpec) -> None:
    METHODS[spec.name] = spec


def exclude(name: str, reason: str) -> None:
    EXCLUDED[name] = reason


def get_method(name: str) -> MethodSpec:
    """The registered method `name` (case and '-' ignored, a few aliases).

    Raises:
        ConfigError: an excluded peft tuner (with why), or an unknown name (with the
            known ones).
    """
    key = name.lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key in EXCLUDED:
        raise ConfigError(
            f"Method {name!r} is a peft tuner petl does not offer by name: {EXCLUDED[key]}. "
            f"Pass a peft config object to petl.apply to use it anyway, or choose one of: "
            f"{', '.join(sorted(METHODS))}."
        )
    if key not in METHODS:
        raise unknown_choice("method", name, METHODS)
    return METHODS[key]


def spec_of_peft_type(peft_type: str) -> MethodSpec | None:
    """The registered method of a peft type name ("LORA", "LOHA", ...), if any."""
    return METHODS.get(str(peft_type).lower())


def weight_parts() -> dict[str, str]:
    """Weight prefix -> the part name `petl.summary` reports its weights under (the first
    method registered with it: AdaLoRA's weights are "lora")."""
    parts: dict[str, str] = {}
    for spec in METHODS.values():
        parts.setdefault(spec.prefix, spec.prefix.strip("_"))
    return parts


def training_options(method: str, total_steps: int) -> dict[str, Any]:
    """Options the trainer sets for `method` from what only it knows (AdaLoRA's
    `total_step`)."""
    hooks = get_method(method).hook_module()
    fill = getattr(hooks, "training_options", None)
    return dict(fill(total_steps)) if fill else {}


def training_hooks(model: Any) -> list[Any]:
    """Hook objects the methods inside `model` add to the training loop."""
    out = []
    for spec in METHODS.values():
        make = getattr(spec.hook_module(), "training_hooks", None)
        hook = make(model) if make else None
        if hook is not None:
            out.append(hook)
    return out


def pow2_divisor(limit: int) -> Callable[[ModelSize], int]:
    """A default that must divide the layer sizes: gcd(limit, hidden size)."""
    return lambda size: math.gcd(limit, size.hidden)


def _peft(name: str, summary: str, config: str, prefix: str, **kw: Any) -> None:
    register(MethodSpec(name, summary, f"peft:{config}", prefix, **kw))


_VT = {"num_virtual_tokens": 20}
_ADALORA = "petl.methods.adalora"

# ---- peft tuners ---------------------------------------------------------------------
_peft("lora", "Low-rank update of weight matrices (DoRA, rsLoRA, PiSSA... as options)", "LoraConfig", "lora_", defaults={"r": 8, "lora_alpha": 16, "lora_dropout": 0.0})  # fmt: skip
_peft("adalora", "LoRA with an adaptive rank budget", "AdaLoraConfig", "lora_", defaults={"init_r": 12, "target_r": 8, "lora_alpha": 16}, required={"total_step": "the number of optimizer steps you will train; petl.Learner sets it for you"}, hooks=_ADALORA)  # fmt: skip
_peft("ia3", "Learned rescaling of keys, values and feed-forward", "IA3Config", "ia3_")
_peft("loha", "Low-rank Hadamard product update (LyCORIS)", "LoHaConfig", "hada_")
_peft("lokr", "Low-rank Kronecker product update (LyCORIS)", "LoKrConfig", "lokr_")
_peft("vera", "Shared frozen random matrices, trained scaling vectors", "VeraConfig", "vera_lambda_")  # fmt: skip
_peft("pvera", "Probabilistic VeRA", "PveraConfig", "pvera_lambda_")
_peft("oft", "Orthogonal fine-tuning: a learned block-diagonal rotation", "OFTConfig", "oft_")
_peft("boft", "Butterfly-factorised orthogonal fine-tuning", "BOFTConfig", "boft_")
_peft("hra", "Householder reflection adaptation", "HRAConfig", "hra_")
_peft("fourierft", "Trained spectral coefficients of the weight update", "FourierFTConfig", "fourierft_")  # fmt: skip
_peft("waveft", "Trained wavelet coefficients of the weight update", "WaveFTConfig", "waveft_", sized={"n_frequency": lambda s: min(2592, s.hidden**2 // 4)})  # fmt: skip
_peft("miss", "Shard-shared single matrix update (MiSS)", "MissConfig", "miss_", sized={"r": lambda s: min(64, s.hidden)})  # fmt: skip
_peft("randlora", "Full-rank update from shared random low-rank bases", "RandLoraConfig", "randlora_")  # fmt: skip
_peft("osf", "Orthogonal subspace fine-tuning: top singular directions frozen", "OSFConfig", "osf_", unmerges=False)  # fmt: skip
_peft("c3a", "Circular-convolution adaptation", "C3AConfig", "c3a_", sized={"block_size": pow2_divisor(256)})  # fmt: skip
_peft("shira", "Sparse high-rank adapter", "ShiraConfig", "shira_", sized={"r": lambda s: min(32, s.hidden // 4)})  # fmt: skip
_peft("road", "Rotational adaptation (RoAd)", "RoadConfig", "road_", sized={"group_size": pow2_divisor(64)})  # fmt: skip
_peft("vblora", "Low-rank factors mixed from a shared vector bank", "VBLoRAConfig", "vblora_", sized={"vector_length": pow2_divisor(256)})  # fmt: skip
_peft("ln_tuning", "Layer-norm tuning (every norm layer unless target_modules)", "LNTuningConfig", "ln_tuning_", targets="norms")  # fmt: skip
_peft("adamss", "Adaptive multi-subspace low-rank update", "AdamssConfig", "adamss_")
_peft("beft", "Bias-efficient fine-tuning (merges only into layers with a bias)", "BeftConfig", "beft_")  # fmt: skip
_peft("deft", "DeFT low-rank update", "DeftConfig", "deft_")
_peft("delora", "Decoupled low-rank adaptation (DeLoRA)", "DeloraConfig", "delora_")
_peft("frod", "Fully-rotational decomposition (FRoD)", "FrodConfig", "frod_")
_peft("glora", "Generalised LoRA", "GloraConfig", "glora_")
_peft("gralora", "Granular low-rank adaptation", "GraloraConfig", "gralora_")
_peft("hira", "Hadamard high-rank adaptation", "HiraConfig", "hira_")
_peft("lily", "Low-rank interconnected adaptation across layers", "LilyConfig", "lily_", mergeable=False)  # fmt: skip
_peft("peanut", "Non-linear weight-aware adapter (PEANuT)", "PeanutConfig", "peanut_")
_peft("psoft", "Principal-subspace orthogonal fine-tuning", "PsoftConfig", "psoft_")
_peft("supertuning", "SuperTuning scaling update", "SupertuningConfig", "supertuning_")
_peft("tinylora", "LoRA with tiny shared projections", "TinyLoraConfig", "tinylora_")
_peft("unilora", "LoRA parameters drawn from one shared vector", "UniLoraConfig", "unilora_")
_peft("shadow", "A small shadow network beside the decoder layers (decoders only)", "ShadowConfig", "shadow_", mergeable=False)  # fmt: skip
_peft("trainable_tokens", "Trains the embeddings of chosen tokens only", "TrainableTokensConfig", "trainable_tokens_", required={"token_indices": "the ids of the tokens whose embeddings train"})  # fmt: skip
_peft("adaption_prompt", "LLaMA-Adapter: gated prompts in the top layers (Llama/Mistral/GPT-2 decoders)", "AdaptionPromptConfig", "adaption_", mergeable=False, targets="prompt", defaults={"adapter_len": 10}, sized={"adapter_layers": lambda s: s.layers})  # fmt: skip
_peft("prompt_tuning", "Trainable soft prompt tokens", "PromptTuningConfig", "prompt_encoder", mergeable=False, targets="prompt", defaults=_VT)  # fmt: skip
_peft("p_tuning", "Soft prompts from a small prompt encoder", "PromptEncoderConfig", "prompt_encoder", mergeable=False, targets="prompt", defaults={**_VT, "encoder_hidden_size": 128})  # fmt: skip
_peft("prefix_tuning", "Trainable key/value prefixes (decoders)", "PrefixTuningConfig", "prompt_encoder", mergeable=False, targets="prefix", defaults=_VT)  # fmt: skip
_peft("cartridge", "A trained key/value cache prefix (decoders)", "CartridgeConfig", "prompt_encoder", mergeable=False, targets="prefix", defaults=_VT)  # fmt: skip

# ---- petl's own methods --------------------------------------------------------------
register(MethodSpec("bottleneck", "Houlsby/Pfeiffer bottleneck adapters", "petl.methods.bottleneck:BottleneckConfig", "bottleneck_", mergeable=False, targets="native"))  # fmt: skip
register(MethodSpec("bitfit", "Bias-only training", "petl.methods.bitfit:BitFitConfig", "bitfit_", targets="native"))  # fmt: skip

# ---- peft config classes petl leaves out ------------------------------------------------
exclude("xlora", "it mixes several already-trained LoRA adapters with a learned gate (multi-adapter)")  # fmt: skip
exclude("poly", "it routes between adapters by a task id that every batch must carry (multi-task)")  # fmt: skip
exclude("multitask_prompt_tuning", "it needs a task id in every batch and a multi-task source prompt (multi-task)")  # fmt: skip
exclude("cpt", "it needs the token ids and type masks of in-context examples in every batch (special data)")  # fmt: skip
exclude("loftq", "LoftQ is an initialisation of LoRA for quantized models, not a tuner: pass lora's init_lora_weights='loftq' with a loftq_config")  # fmt: skip
exclude("eva", "EVA initialises LoRA from activations of real data batches (special data): use peft's initialize_lora_eva_weights")  # fmt: skip
exclude("lora_ga", "LoRA-GA initialises LoRA from gradients of real data batches (special data; lora's lora_ga_config)")  # fmt: skip
exclude(
    "arrow", "Arrow routes among several trained LoRA experts (multi-adapter; lora's arrow_config)"
)
exclude("bdlora", "BD-LoRA is a block-diagonal LoRA for tensor-parallel serving: an option of lora (use_bdlora=BdLoraConfig(...))")  # fmt: skip
exclude("kasa", "KaSA is an option of lora (kasa_config), not a tuner")
exclude("monteclora", "MonteCLoRA is an option of lora (monteclora_config), not a tuner")
exclude("velora", "VeLoRA is a memory-saving option of lora (velora_config), not a tuner")


def known_or_excluded(name: str) -> str:
    """What petl says about a peft tuner name: registered, or why not (for docs/tests)."""
    if name in METHODS:
        return f"{name}: {METHODS[name].summary}"
    if name in EXCLUDED:
        return f"{name}: not offered ({EXCLUDED[name]})"
    return f"{name}: unknown.{did_you_mean(name, METHODS)}"

"""petl: parameter-efficient continual learning.

PEFT methods (`apply`, `load`, `summary`) and continual-learning strategies on one
Accelerate training loop, with metrics of accuracy and forgetting over a task stream.

The public names are imported on first use (PEP 562 `__getattr__`), so `import petl` and the
`petl` command's `--help` do not import torch. `_LAZY` says where each name lives; the
`TYPE_CHECKING` block repeats it for type checkers and the API docs (a test keeps the two
equal). A new public name goes in both and in `__all__`."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

# Errors are light (no torch) and are caught by name often enough to load at once.
from petl.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    IncompatibleModelError,
    PetlError,
    TrainingError,
)

if TYPE_CHECKING:
    from petl.ability import Ability
    from petl.api import apply, load, save
    from petl.exporting import export
    from petl.integrations.transformers import ContinualCallback
    from petl.methods import METHODS
    from petl.methods.bitfit import BitFitConfig
    from petl.methods.bottleneck import BottleneckConfig
    from petl.methods.native import PetlModel
    from petl.param_summary import Summary, summary
    from petl.results import Results
    from petl.strategies import (
        AGEM,
        APER,
        DER,
        ERACE,
        EWC,
        GEM,
        MAS,
        NCM,
        OSF,
        SI,
        SLCA,
        STRATEGIES,
        WA,
        Cumulative,
        FeCAM,
        GDumb,
        ICaRL,
        Joint,
        LwF,
        MaskSeen,
        Naive,
        OLoRA,
        RanPAC,
        Replay,
        Strategy,
        TaskAdapters,
    )
    from petl.stream import Example, Stream, Task
    from petl.training.config import TrainConfig
    from petl.training.learner import Learner

__version__ = "0.1.0"

# module -> the public names it defines
_LAZY: dict[str, tuple[str, ...]] = {
    "petl.ability": ("Ability",),
    "petl.api": ("apply", "load", "save"),
    "petl.exporting": ("export",),
    "petl.integrations.transformers": ("ContinualCallback",),
    "petl.methods": ("METHODS",),
    "petl.methods.bitfit": ("BitFitConfig",),
    "petl.methods.bottleneck": ("BottleneckConfig",),
    "petl.methods.native": ("PetlModel",),
    "petl.param_summary": ("Summary", "summary"),
    "petl.results": ("Results",),
    "petl.strategies": (
        "AGEM",
        "APER",
        "DER",
        "ERACE",
        "EWC",
        "GEM",
        "MAS",
        "NCM",
        "SI",
        "SLCA",
        "STRATEGIES",
        "WA",
        "Cumulative",
        "FeCAM",
        "GDumb",
        "ICaRL",
        "Joint",
        "LwF",
        "MaskSeen",
        "Naive",
        "OLoRA",
        "OSF",
        "RanPAC",
        "Replay",
        "Strategy",
        "TaskAdapters",
    ),
    "petl.stream": ("Example", "Stream", "Task"),
    "petl.training.config": ("TrainConfig",),
    "petl.training.learner": ("Learner",),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        # `petl.metrics.forgetting(...)` after a bare `import petl` worked while this file
        # imported everything at once; submodules stay reachable that way.
        if name.startswith("_") or importlib.util.find_spec(f"petl.{name}") is None:
            raise AttributeError(f"module 'petl' has no attribute {name!r}")
        return importlib.import_module(f"petl.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AGEM",
    "APER",
    "DER",
    "ERACE",
    "EWC",
    "GEM",
    "MAS",
    "METHODS",
    "NCM",
    "OSF",
    "SI",
    "SLCA",
    "STRATEGIES",
    "WA",
    "Ability",
    "BitFitConfig",
    "BottleneckConfig",
    "CheckpointError",
    "ConfigError",
    "ContinualCallback",
    "Cumulative",
    "DataError",
    "Example",
    "FeCAM",
    "GDumb",
    "ICaRL",
    "IncompatibleModelError",
    "Joint",
    "Learner",
    "LwF",
    "MaskSeen",
    "Naive",
    "OLoRA",
    "PetlError",
    "PetlModel",
    "RanPAC",
    "Replay",
    "Results",
    "Strategy",
    "Stream",
    "Summary",
    "Task",
    "TaskAdapters",
    "TrainConfig",
    "TrainingError",
    "apply",
    "export",
    "load",
    "save",
    "summary",
]

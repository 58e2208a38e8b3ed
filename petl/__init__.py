"""petl: parameter-efficient continual learning.

PEFT methods (`apply`, `load`, `summary`) and continual-learning strategies on one
Accelerate training loop, with metrics of accuracy and forgetting over a task stream."""

from petl.api import apply, load, save
from petl.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    IncompatibleModelError,
    PetlError,
    TrainingError,
)
from petl.export import export
from petl.methods import METHODS
from petl.methods.bitfit import BitFitConfig
from petl.methods.bottleneck import BottleneckConfig
from petl.methods.native import PetlModel
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
from petl.summary import Summary, summary
from petl.training.config import TrainConfig
from petl.training.learner import Learner

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Imported on first use: the Trainer bridge pulls in transformers' Trainer machinery.
    if name == "ContinualCallback":
        from petl.integrations.transformers import ContinualCallback

        return ContinualCallback
    raise AttributeError(f"module 'petl' has no attribute {name!r}")


__all__ = [
    "APER",
    "EWC",
    "METHODS",
    "NCM",
    "SLCA",
    "STRATEGIES",
    "WA",
    "BitFitConfig",
    "BottleneckConfig",
    "CheckpointError",
    "ConfigError",
    "ContinualCallback",
    "DataError",
    "Example",
    "FeCAM",
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
__all__ += ["AGEM", "DER", "ERACE", "GEM", "MAS", "SI", "Cumulative", "GDumb", "ICaRL"]

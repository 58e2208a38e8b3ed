"""petl: parameter-efficient continual learning.

PEFT methods (`apply`, `load`, `summary`) and continual-learning strategies on one
Accelerate training loop, with metrics of accuracy and forgetting over a task stream."""

from petl.api import apply, load, save
from petl.errors import CheckpointError, ConfigError, DataError, IncompatibleModelError, PetlError
from petl.methods import METHODS
from petl.methods.bitfit import BitFitConfig
from petl.methods.bottleneck import BottleneckConfig
from petl.methods.native import PetlModel
from petl.results import Results
from petl.strategies import (
    APER,
    EWC,
    NCM,
    STRATEGIES,
    FeCAM,
    Joint,
    LwF,
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

__all__ = [
    "APER",
    "EWC",
    "METHODS",
    "NCM",
    "STRATEGIES",
    "BitFitConfig",
    "BottleneckConfig",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Example",
    "FeCAM",
    "IncompatibleModelError",
    "Joint",
    "Learner",
    "LwF",
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
    "apply",
    "load",
    "save",
    "summary",
]

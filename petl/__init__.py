"""petl: parameter-efficient continual learning.

PEFT methods (`apply`, `load`, `summary`) and continual-learning strategies on one
Accelerate training loop, with metrics of accuracy and forgetting over a task stream."""

from petl.api import apply, load, save
from petl.errors import CheckpointError, ConfigError, DataError, IncompatibleModelError, PetlError
from petl.methods import METHODS
from petl.methods.bitfit import BitFitConfig
from petl.methods.bottleneck import BottleneckConfig
from petl.methods.native import PetlModel
from petl.summary import Summary, summary

__version__ = "0.1.0"

__all__ = [
    "METHODS", "BitFitConfig", "BottleneckConfig", "CheckpointError", "ConfigError",
    "DataError", "IncompatibleModelError", "PetlError", "PetlModel", "Summary",
    "apply", "load", "save", "summary",
]

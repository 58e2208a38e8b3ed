"""Continual-learning strategies, one file each; combine any of them in a Learner."""

from petl.strategies.aper import APER
from petl.strategies.base import Naive, Strategy
from petl.strategies.ewc import EWC
from petl.strategies.fecam import FeCAM
from petl.strategies.joint import Joint
from petl.strategies.lwf import LwF
from petl.strategies.ncm import NCM
from petl.strategies.olora import OLoRA
from petl.strategies.ranpac import RanPAC
from petl.strategies.replay import Replay
from petl.strategies.task_adapters import TaskAdapters

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Naive, EWC, Replay, LwF, TaskAdapters, OLoRA, Joint)
}
STRATEGIES.update({cls.name: cls for cls in (NCM, FeCAM, RanPAC, APER)})  # statistic heads

__all__ = [
    "APER",
    "EWC",
    "NCM",
    "STRATEGIES",
    "FeCAM",
    "Joint",
    "LwF",
    "Naive",
    "OLoRA",
    "RanPAC",
    "Replay",
    "Strategy",
    "TaskAdapters",
]

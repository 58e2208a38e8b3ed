"""Continual-learning strategies, one file each; combine any of them in a Learner."""

from petl.strategies.base import Naive, Strategy
from petl.strategies.ewc import EWC
from petl.strategies.joint import Joint
from petl.strategies.lwf import LwF
from petl.strategies.olora import OLoRA
from petl.strategies.replay import Replay
from petl.strategies.task_adapters import TaskAdapters

STRATEGIES = {cls.name: cls for cls in (Naive, EWC, Replay, LwF, TaskAdapters, OLoRA, Joint)}

__all__ = [
    "EWC",
    "STRATEGIES",
    "Joint",
    "LwF",
    "Naive",
    "OLoRA",
    "Replay",
    "Strategy",
    "TaskAdapters",
]

"""Continual-learning strategies, one file each; combine any of them in a Learner."""

from petl.strategies.base import Naive, Strategy
from petl.strategies.ewc import EWC
from petl.strategies.joint import Joint
from petl.strategies.lwf import LwF
from petl.strategies.mask_seen import MaskSeen
from petl.strategies.olora import OLoRA
from petl.strategies.replay import Replay
from petl.strategies.slca import SLCA
from petl.strategies.task_adapters import TaskAdapters
from petl.strategies.wa import WA

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Naive, EWC, Replay, LwF, TaskAdapters, OLoRA, Joint)
}
STRATEGIES.update({cls.name: cls for cls in (SLCA, MaskSeen, WA)})  # issue 9 part B

__all__ = [
    "EWC",
    "SLCA",
    "STRATEGIES",
    "WA",
    "Joint",
    "LwF",
    "MaskSeen",
    "Naive",
    "OLoRA",
    "Replay",
    "Strategy",
    "TaskAdapters",
]

"""Continual-learning strategies, one file each; combine any of them in a Learner."""

from petl.strategies.agem import AGEM
from petl.strategies.aper import APER
from petl.strategies.base import Naive, Strategy
from petl.strategies.cumulative import Cumulative
from petl.strategies.der import DER
from petl.strategies.er_ace import ERACE
from petl.strategies.ewc import EWC
from petl.strategies.fecam import FeCAM
from petl.strategies.gdumb import GDumb
from petl.strategies.gem import GEM
from petl.strategies.icarl import ICaRL
from petl.strategies.joint import Joint
from petl.strategies.lwf import LwF
from petl.strategies.mas import MAS
from petl.strategies.mask_seen import MaskSeen
from petl.strategies.ncm import NCM
from petl.strategies.olora import OLoRA
from petl.strategies.osf import OSF
from petl.strategies.protocol import Capabilities
from petl.strategies.ranpac import RanPAC
from petl.strategies.replay import Replay
from petl.strategies.si import SI
from petl.strategies.slca import SLCA
from petl.strategies.task_adapters import TaskAdapters
from petl.strategies.wa import WA

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Naive, EWC, Replay, LwF, TaskAdapters, OLoRA, Joint)
}
# the classic catalog, on the same protocol (one file each)
CATALOG = (SI, MAS, AGEM, GEM, DER, ERACE, ICaRL, GDumb, Cumulative)
STRATEGIES.update({cls.name: cls for cls in CATALOG})
STRATEGIES.update({cls.name: cls for cls in (SLCA, MaskSeen, WA)})  # issue 9 part B
STRATEGIES.update({cls.name: cls for cls in (NCM, FeCAM, RanPAC, APER)})  # statistic heads
STRATEGIES[OSF.name] = OSF  # issue 14: needs peft's OSF method


def _ability() -> type[Strategy]:
    # a monitor, not a CL strategy: listed so configs can name it ("ability", last)
    from petl.ability import Ability

    return Ability


STRATEGIES["ability"] = _ability()

__all__ = [
    "APER",
    "EWC",
    "NCM",
    "SLCA",
    "STRATEGIES",
    "WA",
    "FeCAM",
    "Joint",
    "LwF",
    "MaskSeen",
    "Naive",
    "OLoRA",
    "RanPAC",
    "Replay",
    "Strategy",
    "TaskAdapters",
]
__all__ += ["AGEM", "DER", "ERACE", "GEM", "MAS", "SI", "Capabilities", "Cumulative", "GDumb"]
__all__ += ["OSF", "ICaRL"]

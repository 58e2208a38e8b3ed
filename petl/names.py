"""The registered method and strategy names, as plain strings, for code that must not import
torch (the `petl` command's helps).

The strategy registry (`petl.STRATEGIES`) imports torch; a test (tests/test_lazy_import.py)
keeps these tuples equal to the registries' keys, so a new strategy is added here too. The
method registry imports neither torch nor peft, so the method names are read from it."""

from __future__ import annotations

from petl.methods import METHODS

METHOD_NAMES = tuple(METHODS)  # the registry itself is torch-free (petl/methods/__init__.py)
STRATEGY_NAMES = (
    "naive",
    "ewc",
    "replay",
    "lwf",
    "task_adapters",
    "olora",
    "joint",
    "si",
    "mas",
    "agem",
    "gem",
    "der",
    "er_ace",
    "icarl",
    "gdumb",
    "cumulative",
    "slca",
    "mask_seen",
    "wa",
    "ncm",
    "fecam",
    "ranpac",
    "aper",
    "osf",
    "ability",
)

"""The registered method and strategy names, as plain strings, for code that must not import
torch (the `petl` command's helps).

The registries themselves (`petl.METHODS`, `petl.STRATEGIES`) import torch; a test
(tests/test_lazy_import.py) keeps these tuples equal to their keys, so a new method or
strategy is added here too."""

from __future__ import annotations

METHOD_NAMES = (
    "lora",
    "adalora",
    "ia3",
    "bitfit",
    "bottleneck",
    "prompt_tuning",
    "prefix_tuning",
    "p_tuning",
)
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

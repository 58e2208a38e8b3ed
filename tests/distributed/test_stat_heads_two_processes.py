"""Statistic heads under 2 CPU processes equal the single-process run: every rank holds
the same statistics (features are gathered before they are added), equal to one
process's up to float summation order, and the accuracy matrices agree."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.distributed.test_two_processes import _env, _run, accelerate_launch

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # about 1 min: 2 launches

WORKER = str(Path(__file__).parent / "stat_heads_worker.py")


def _launch(*args: str) -> list[str]:
    cmd = accelerate_launch(*args)
    cmd[cmd.index(str(Path(__file__).parent / "cl_worker.py"))] = WORKER
    return cmd


def test_two_processes_give_the_head_of_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, WORKER, "--out", str(one)], _env(cpu_flag=False))
    _run(_launch("--out", str(two)), _env(cpu_flag=True))
    ref = load_file(one / "rank0.safetensors")
    ranks = [load_file(two / f"rank{r}.safetensors") for r in (0, 1)]
    assert ref and ranks[0].keys() == ranks[1].keys() == ref.keys()
    for name, value in ref.items():
        # every rank computes the same sums from the same gathered features: bit-identical
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        # features from half batches differ from whole batches by float rounding only
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-4, atol=1e-4)
    accuracy = json.loads((one / "rank0.json").read_text())
    for r in (0, 1):
        assert json.loads((two / f"rank{r}.json").read_text()) == accuracy

"""SLCA's class statistics under 2 CPU processes (gloo) equal the single-process ones: each
process sums the features of its share of a task's rows and the sums are all-reduced, so
every rank aligns the same head from the same Gaussians."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.distributed.test_two_processes import _env, _run, accelerate_launch

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # two launches, about 1 min

WORKER = str(Path(__file__).parent / "slca_worker.py")


def _load(folder: Path) -> list[tuple[dict, dict[str, torch.Tensor]]]:
    return [
        (json.loads(p.read_text()), load_file(p.with_suffix(".safetensors")))
        for p in sorted(folder.glob("rank*.json"))
    ]


def test_slca_statistics_two_processes_equal_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, WORKER, str(one)], _env(cpu_flag=False))
    launch = accelerate_launch(str(two))
    launch[launch.index(str(Path(__file__).parent / "cl_worker.py"))] = WORKER
    _run(launch, _env(cpu_flag=True))
    [(ref_info, ref)] = _load(one)
    ranks = _load(two)
    assert [info["num_processes"] for info, _ in ranks] == [2, 2]
    (_, r0), (_, r1) = ranks
    for key in (k for k in r0 if k.startswith(("slca.", "model."))):
        assert torch.equal(r0[key], r1[key]), key  # one all-reduce: identical on every rank
    # 3 tasks x 2 classes, 29 training rows per task: 15 of its first class, 14 of the other
    assert ref["slca.count"].tolist() == [15.0, 14.0, 15.0, 14.0, 15.0, 14.0]
    torch.testing.assert_close(r0["slca.count"], ref["slca.count"], rtol=0, atol=0)
    # sums of float32 features in another order and a slightly different backbone (DDP's
    # gradient averaging): equal to float32 precision
    torch.testing.assert_close(r0["slca.sum"], ref["slca.sum"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r0["slca.outer"], ref["slca.outer"], rtol=1e-4, atol=1e-4)
    for key in (k for k in ref if k.startswith("model.heads.")):
        torch.testing.assert_close(r0[key], ref[key], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ranks[0][0]["accuracy"], ref_info["accuracy"], atol=1e-9)

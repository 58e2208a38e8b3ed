"""FSDP2 sharding (`TrainConfig(sharding="fsdp")`) on 2 CPU processes equals one process
for the strategies that work inside the optimizer step or on gathered features:
- SI, A-GEM, GEM: their per-step hooks read the step's gradients (and SI the weights),
  which are shards under FSDP; they gather them (`sharding.full`, A-GEM/GEM's reference
  gradients on the all-gathered weights, `sharding.assign_grad` keeps each process's
  shard of the projection). AdaLoRA's rank budget (peft's `update_and_allocate` after
  every step) runs on gathered LoRA weights and gradients (`sharding.full_parameters`).
  MAS (importance between tasks, on the gathered model) too.
- NCM, FeCAM, RanPAC, APER (stat_heads_worker.py) and SLCA (slca_worker.py): statistics
  of features gathered across processes, from a backbone trained sharded.
Each compared with the single-process run: ranks identical, weights/statistics within
float summation noise, the accuracy matrix within 0.01 (below one test example in 13).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.distributed.test_two_processes import (
    LOOSE,
    WORKER,
    _env,
    _load,
    _max_diff,
    _run,
    accelerate_launch,
)

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.slow,
]  # 4-7 min on 2 shared cores: 6 launches

HERE = Path(__file__).parent
CASES = ["si", "agem", "gem", "mas", "adalora"]
# LwF, class-incremental, alpha=4: test_fsdp.py's task-incremental LwF case sits at the
# edge of float noise (old heads' first-step gradient is noise that AdamW turns into a
# full step; 1 vs 2 processes move logits by ~0.2 while the smallest top-2 logit margin
# is ~0.02, so one test example in 13 flips, under DDP exactly as under FSDP). Here the
# concatenated head gives every old class a real cross-entropy gradient, the same noise
# moves logits by ~8e-3 (DDP too: weights 1.3e-2 from one process under both, FSDP = DDP
# within 5e-6) while the smallest margin is ~5e-2, so the matrix is not a coin toss; the
# test checks that margin, not only the matrix.
LWF = "lwf@scenario=class,alpha=4"
WEIGHT_ATOL = 1e-4  # float summation order differs between 1 and 2 processes
ACC_ATOL = 0.01  # below one test example in 13: the matrices must be equal


def _launch(worker: str, *args: str) -> list[str]:
    cmd = accelerate_launch(*args)
    cmd[cmd.index(WORKER)] = worker
    return cmd


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdp_steps")
    args = ["--epochs", "2"]  # as test_fsdp.py: half the DDP tests' CPU time
    cases = [*CASES, LWF]
    _run([sys.executable, WORKER, *cases, "--out", str(root / "one"), *args], _env(False))
    _run(
        accelerate_launch(*cases, "--sharding", "fsdp", "--out", str(root / "two"), *args),
        _env(True),
    )
    return root


@pytest.mark.parametrize("case", CASES)
def test_fsdp_step_hooks_equal_one_process(runs, case):
    [(ref_info, ref)] = _load(runs / "one" / case)
    (info0, t0), (info1, t1) = _load(runs / "two" / case)
    for info in (info0, info1):
        assert info["num_processes"] == 2
        # sharded while training: about half the trainable elements (+ replicated heads)
        assert info["held_fraction"] and all(0.4 < f < 0.8 for f in info["held_fraction"])
    assert _max_diff(t0, t1, "model.") == 0.0  # the same gathered shards on both ranks
    # GEM's quadratic program amplifies summation noise (test_two_processes.LOOSE, DDP)
    assert _max_diff(ref, t0, "model.") < LOOSE.get(case, WEIGHT_ATOL)
    np.testing.assert_allclose(info0["accuracy"], ref_info["accuracy"], atol=ACC_ATOL)


def _logits(tensors):
    return [tensors[k].float() for k in sorted(tensors) if k.startswith("logits.")]


def test_fsdp_lwf_equals_one_process_with_a_margin(runs):
    [(ref_info, ref)] = _load(runs / "one" / LWF)
    (info0, t0), (_, t1) = _load(runs / "two" / LWF)
    assert info0["held_fraction"] and _max_diff(t0, t1, "model.") == 0.0
    np.testing.assert_allclose(info0["accuracy"], ref_info["accuracy"], atol=ACC_ATOL)
    # the predictions are not at the edge: the smallest top-2 margin of one process's
    # logits is over 3x the largest logit difference between the two runs
    margin = min((x.topk(2, -1).values.diff(dim=-1).abs().min().item()) for x in _logits(ref))
    moved = max((a - b).abs().max().item() for a, b in zip(_logits(ref), _logits(t0), strict=True))
    assert margin > 3 * moved, (margin, moved)


def test_fsdp_adalora_budget_masks_the_ranks_of_one_process(runs):
    [(_, ref)] = _load(runs / "one" / "adalora")
    (_, t0), _ = _load(runs / "two" / "adalora")
    keys = [k for k in ref if "lora_E" in k]
    assert keys
    masked = {k: (ref[k] == 0).flatten().tolist() for k in keys}  # the budget's choice of ranks
    assert sum(sum(m) for m in masked.values()) > 0  # it did mask: the check is not vacuous
    assert {k: (t0[k] == 0).flatten().tolist() for k in keys} == masked


def test_fsdp_statistic_heads_equal_one_process(tmp_path):
    worker = str(HERE / "stat_heads_worker.py")
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, worker, "--out", str(one)], _env(False))
    _run(_launch(worker, "--sharding", "fsdp", "--out", str(two)), _env(True))
    ref = load_file(one / "rank0.safetensors")
    ranks = [load_file(two / f"rank{r}.safetensors") for r in (0, 1)]
    assert ref and ranks[0].keys() == ranks[1].keys() == ref.keys()
    for name, value in ref.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # same gathered sums
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-4, atol=1e-4)
    accuracy = json.loads((one / "rank0.json").read_text())
    for r in (0, 1):
        got = json.loads((two / f"rank{r}.json").read_text())
        assert got.keys() == accuracy.keys()
        for case, matrix in accuracy.items():
            np.testing.assert_allclose(got[case], matrix, atol=ACC_ATOL, err_msg=case)


def test_fsdp_slca_equals_one_process(tmp_path):
    worker = str(HERE / "slca_worker.py")
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, worker, str(one)], _env(False))
    _run(_launch(worker, str(two), "fsdp"), _env(True))
    [(ref_info, ref)] = _load(one)
    (info0, r0), (_, r1) = _load(two)
    assert info0["num_processes"] == 2
    for key in (k for k in r0 if k.startswith(("slca.", "model."))):
        assert torch.equal(r0[key], r1[key]), key  # all-reduced: the same bits on every rank
    torch.testing.assert_close(r0["slca.count"], ref["slca.count"], rtol=0, atol=0)
    torch.testing.assert_close(r0["slca.sum"], ref["slca.sum"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r0["slca.outer"], ref["slca.outer"], rtol=1e-4, atol=1e-4)
    assert _max_diff(ref, r0, "model.") < WEIGHT_ATOL
    np.testing.assert_allclose(info0["accuracy"], ref_info["accuracy"], atol=ACC_ATOL)

"""A Trainer + ContinualCallback run under `accelerate launch` on 2 CPU processes (gloo)
gives the result of 1 process: the same accuracy matrix, and on every rank the same
trainable weights and EWC Fisher as the single process, up to float summation order."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # about 1 min: 2 launches

WORKER = str(Path(__file__).parent / "trainer_worker.py")
ATOL = 1e-4  # float summation order differs between 1 and 2 processes


def _env(cpu: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ACCELERATE_USE_CPU", "WORLD_SIZE")}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    if cpu:
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load(folder: Path) -> list[tuple[dict[str, Any], dict[str, torch.Tensor]]]:
    ranks = sorted(folder.glob("rank*.json"))
    return [(json.loads(p.read_text()), load_file(p.with_suffix(".safetensors"))) for p in ranks]


def test_two_processes_equal_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, WORKER, "--out", str(one)], _env(cpu=False))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", str(_port())]
    _run([*launch, WORKER, "--out", str(two)], _env(cpu=True))
    [(single, single_tensors)] = _load(one)
    ranks = _load(two)
    assert [r["world"] for r, _ in ranks] == [2, 2]
    for info, tensors in ranks:
        np.testing.assert_array_equal(info["accuracy"], single["accuracy"])
        assert tensors.keys() == single_tensors.keys()
        for key, value in single_tensors.items():
            torch.testing.assert_close(tensors[key], value, atol=ATOL, rtol=0, msg=key)

"""Token and generation evaluation is split across processes (as classification's is): under
`accelerate launch --num_processes 2` each rank predicts its own share of the test rows, the
shares are gathered in order, and the run gives the same score matrix and predictions as
one process (generation_worker.py runs the cases)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.distributed.test_two_processes import _env, _free_port, _run

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # two launches, about 1 min

WORKER = str(Path(__file__).parent / "generation_worker.py")
CASES = ["labels", "greedy", "tokens"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    _run([sys.executable, WORKER, *CASES, "--out", str(root / "one")], _env(cpu_flag=False))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    _run([*launch, WORKER, *CASES, "--out", str(root / "two")], _env(cpu_flag=True))
    return root


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one(runs: Path, case: str) -> None:
    one = _read(runs / "one" / case / "rank0.json")
    ranks = [_read(runs / "two" / case / f"rank{r}.json") for r in (0, 1)]
    assert one["processes"] == 1 and all(r["processes"] == 2 for r in ranks)
    # every rank gets every prediction, in order
    assert ranks[0]["preds"] == ranks[1]["preds"]
    assert [len(p) for p in ranks[0]["preds"]] == [7, 7]
    # the same model (DDP training differs only by float summation order) gives the same
    # answers and the same matrix; the bound is 0.02
    np.testing.assert_allclose(ranks[0]["matrix"], one["matrix"], atol=0.02, rtol=0)
    assert ranks[0]["preds"] == one["preds"]
    # each rank predicted only its share: together, what one process predicted alone
    own = [r["own_rows"] for r in ranks]
    assert sum(own) == one["own_rows"] and 0 < min(own) <= max(own) < one["own_rows"]
